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

-- Messages a bot was given too many times without acknowledging them: direct
-- messages, and channel messages of a durable subscription (channel set).
CREATE TABLE dead_letters (
    seq           INTEGER PRIMARY KEY,       -- the message.dead_lettered event
    message_seq   INTEGER NOT NULL,          -- the message given up on
    bot_id        TEXT    NOT NULL,          -- the bot it was for
    channel       TEXT,                      -- the subscription's channel; NULL for a direct message
    reason        TEXT    NOT NULL,
    deliveries    INTEGER NOT NULL,
    dead_at       INTEGER NOT NULL,          -- UTC microseconds
    replayed_seq  INTEGER,                   -- the copy sent to the bot's mailbox, once replayed
    UNIQUE (message_seq, bot_id)
) STRICT;
CREATE INDEX dead_letters_by_bot ON dead_letters(bot_id, seq);
