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
