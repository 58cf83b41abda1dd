-- Durable channel subscriptions: a bot's cursor on a channel, kept in the
-- log so it survives restarts. As for mailboxes, acked_seq is the floor at
-- or below which every message of the channel is settled for this bot, and
-- consumer_settled holds the messages settled one by one above it.
CREATE TABLE channel_consumers (
    bot_id      TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    acked_seq   INTEGER NOT NULL,            -- the floor; starts at the subscription's start position
    created_at  INTEGER NOT NULL,            -- UTC microseconds
    last_seq    INTEGER NOT NULL,
    PRIMARY KEY (bot_id, channel)
) STRICT, WITHOUT ROWID;

CREATE TABLE consumer_settled (
    bot_id   TEXT    NOT NULL,
    channel  TEXT    NOT NULL,
    seq      INTEGER NOT NULL,               -- the message.published event
    outcome  TEXT    NOT NULL CHECK (outcome IN ('acked', 'dead_lettered')),
    PRIMARY KEY (bot_id, channel, seq)
) STRICT, WITHOUT ROWID;
