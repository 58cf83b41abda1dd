-- Delivery attempts, so that a daemon restart does not reset what
-- --max-deliveries counts. Not a projection of the log: the daemon writes
-- them beside it, in the transaction of its next batch (group commit), and a
-- rebuild from the log leaves them empty. Recorded cheaply: a reader's first
-- deliveries move one mark (every message of the reader at or below
-- delivered_upto that is not settled was delivered at least once), and only
-- messages delivered more than once have a row of their own. Rows go when
-- their messages are settled (the settlement events' projection deletes
-- them).
CREATE TABLE delivery_marks (
    bot_id          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,   -- the durable subscription's channel; '' for the mailbox
    delivered_upto  INTEGER NOT NULL,
    PRIMARY KEY (bot_id, channel)
) STRICT, WITHOUT ROWID;

CREATE TABLE delivery_counts (
    bot_id      TEXT    NOT NULL,
    channel     TEXT    NOT NULL,       -- as in delivery_marks
    seq         INTEGER NOT NULL,       -- the message
    deliveries  INTEGER NOT NULL,       -- 2 or more
    PRIMARY KEY (bot_id, channel, seq)
) STRICT, WITHOUT ROWID;

-- The direct messages with a time to live that are not settled yet, by when
-- they expire: the daemon's expiry sweep reads the due ones a page at a
-- time and logs them message.expired, so a mailbox's count is exact whether
-- or not its bot ever connects. A projection of the log (message.sent with
-- ttl_ms or expires_at adds a row; its settlement, however it comes, takes
-- it away).
CREATE TABLE mailbox_expiries (
    bot_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,       -- the message.sent event
    expires_at  INTEGER NOT NULL,       -- UTC microseconds
    PRIMARY KEY (bot_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX mailbox_expiries_by_time ON mailbox_expiries(expires_at, bot_id, seq);

-- Projections this migration adds that need what the log holds already:
-- the store fills each from the log when it opens, in one transaction, and
-- removes its row (SQL cannot read the events' msgpack payloads).
CREATE TABLE projection_fills (
    name  TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
INSERT INTO projection_fills (name) VALUES ('mailbox_expiries');
