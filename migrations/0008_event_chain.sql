-- The log's hash chain (store/sqlite/event_hash.hpp): each event's hash is
-- SHA-256 over the previous event's hash and its own stored fields, so
-- `botbusd verify` can find an edited, lost or inserted event.
--
-- Existing databases: the chain starts at the first event appended after
-- this migration (its predecessor hash is all zeros); the events already in
-- the log keep a NULL hash and are not verified. Hashing them here would
-- vouch for rows nobody checked when they were written, and a log already
-- trimmed has gaps no record explains.
ALTER TABLE events ADD COLUMN hash BLOB;   -- NULL: before the chain began

-- The chain's head beside the log's: the hash of event last_seq, and the
-- last seq before the chain began (0 for a database created with it).
ALTER TABLE log_head ADD COLUMN last_hash BLOB;  -- NULL: nothing chained yet
ALTER TABLE log_head ADD COLUMN chain_start INTEGER NOT NULL DEFAULT 0;
UPDATE log_head SET chain_start = last_seq;

-- Retention deletes chained events: each maximal run of deleted seqs is
-- kept as one row with the hash of its last event, from which the chain
-- resumes, so a trimmed gap verifies and a gap without a row is reported.
CREATE TABLE trimmed_ranges (
    first_seq  INTEGER PRIMARY KEY,
    last_seq   INTEGER NOT NULL UNIQUE,
    last_hash  BLOB    NOT NULL
) STRICT;
