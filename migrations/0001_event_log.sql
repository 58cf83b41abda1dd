-- The append-only event log: the source of truth. Every other table in this
-- database is a projection of it and can be rebuilt by replaying it.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,      -- global, gap-free, assigned by the daemon
    ts_us        INTEGER NOT NULL,         -- UTC microseconds since the Unix epoch
    stream       TEXT    NOT NULL,         -- 'ch/<channel>', 'dm/<bot>', 'sys/channels', ...
    stream_seq   INTEGER NOT NULL,         -- 1, 2, 3, ... within the stream
    type         TEXT    NOT NULL,         -- 'message.published', 'channel.created', ...
    producer     TEXT    NOT NULL,         -- the bot that caused the event
    idem_key     TEXT,                     -- optional, unique per producer
    payload      BLOB    NOT NULL          -- msgpack map, shape fixed by type
) STRICT;

CREATE UNIQUE INDEX events_by_stream ON events(stream, stream_seq);
CREATE UNIQUE INDEX events_by_idem_key ON events(producer, idem_key) WHERE idem_key IS NOT NULL;

-- The log's head survives trimming, so a seq is never handed out twice.
CREATE TABLE log_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL
) STRICT;
INSERT INTO log_head (id, last_seq) VALUES (1, 0);

-- Last per-stream sequence handed out, for the same reason.
CREATE TABLE streams (
    stream           TEXT PRIMARY KEY,
    last_stream_seq  INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The last log seq each projection has applied.
CREATE TABLE projection_state (
    projection  TEXT PRIMARY KEY,
    last_seq    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
