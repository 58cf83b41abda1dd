-- Per-message settlement of direct messages. A mailbox's acked_seq is the
-- floor below which everything is settled; above it, messages are settled one
-- by one (acknowledged by seq, expired, or dead-lettered). The floor moves up
-- over settled messages as soon as nothing unsettled lies below them, and
-- their rows here go.
CREATE TABLE mailbox_settled (
    bot_id   TEXT    NOT NULL,
    seq      INTEGER NOT NULL,               -- the message.sent event
    outcome  TEXT    NOT NULL CHECK (outcome IN ('acked', 'expired', 'dead_lettered')),
    PRIMARY KEY (bot_id, seq)
) STRICT, WITHOUT ROWID;

-- Direct messages delivered too often without an acknowledgement.
CREATE TABLE dead_letters (
    message_seq   INTEGER PRIMARY KEY,       -- the message.sent event
    bot_id        TEXT    NOT NULL,          -- its recipient
    reason        TEXT    NOT NULL,
    deliveries    INTEGER NOT NULL,
    dead_at       INTEGER NOT NULL,          -- UTC microseconds
    seq           INTEGER NOT NULL UNIQUE,   -- the message.dead_lettered event
    replayed_seq  INTEGER                    -- the copy sent back to the mailbox, once replayed
) STRICT;
CREATE INDEX dead_letters_by_bot ON dead_letters(bot_id, seq);
