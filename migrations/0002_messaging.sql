-- Messaging projections (the seed's MessageRepository tables, plus the seq
-- of the event that last touched each row).
CREATE TABLE bot_channels (
    name         TEXT PRIMARY KEY,
    description  TEXT,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,         -- UTC microseconds
    last_seq     INTEGER NOT NULL
) STRICT;

CREATE TABLE bot_subscriptions (
    bot_id         TEXT    NOT NULL,
    channel_name   TEXT    NOT NULL,
    subscribed_at  INTEGER NOT NULL,       -- UTC microseconds
    last_seq       INTEGER NOT NULL,
    PRIMARY KEY (bot_id, channel_name)
) STRICT, WITHOUT ROWID;
CREATE INDEX bot_subscriptions_by_channel ON bot_subscriptions(channel_name, bot_id);

-- One row per channel or direct message; seq is the log event's seq.
CREATE TABLE bot_messages (
    seq            INTEGER PRIMARY KEY,
    from_bot_id    TEXT    NOT NULL,
    to_bot_id      TEXT,                   -- set for direct messages
    channel_name   TEXT,                   -- set for channel messages
    stream_seq     INTEGER NOT NULL,       -- channel seq, or the recipient's mailbox seq
    message_type   TEXT    NOT NULL,
    body           BLOB    NOT NULL,       -- msgpack value, as the sender gave it
    reply_to       INTEGER,                -- seq of the message this answers
    conversation   TEXT,                   -- 'a\nb' (sorted pair) for direct messages
    created_at     INTEGER NOT NULL,       -- UTC microseconds
    CHECK ((to_bot_id IS NULL) <> (channel_name IS NULL))
) STRICT;
CREATE INDEX bot_messages_by_channel ON bot_messages(channel_name, seq) WHERE channel_name IS NOT NULL;
CREATE INDEX bot_messages_by_conversation ON bot_messages(conversation, seq) WHERE conversation IS NOT NULL;
CREATE INDEX bot_messages_by_recipient ON bot_messages(to_bot_id, seq) WHERE to_bot_id IS NOT NULL;

-- Per-bot mailbox: how far the bot has acknowledged its direct messages.
CREATE TABLE bot_mailboxes (
    bot_id     TEXT PRIMARY KEY,
    acked_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
