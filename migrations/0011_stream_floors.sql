-- Fewer pages rewritten by every commit (issue 13): a commit used to write
-- five B-tree pages whatever it appended (the events leaf, its index leaf,
-- `streams`, `log_head`, `projection_state`); now three.
--
-- The projections are written in the log's own transaction, so their
-- position is always log_head.last_seq: the projection_state row said
-- nothing more, and was rewritten by every commit.
DROP TABLE projection_state;

-- A stream's head (its last stream seq and last seq) is its newest event,
-- one step down events_by_stream. `streams` lists every stream (retention
-- walks it) and keeps, as a floor, the head a stream had when retention last
-- deleted from it, so a stream whose messages are all trimmed never hands
-- out a stream seq again. It is written when a stream first appears and when
-- it is trimmed, not by every commit that appends to it. The heads it holds
-- today are exact, so they are valid floors.
ALTER TABLE streams RENAME COLUMN last_stream_seq TO floor_stream_seq;
ALTER TABLE streams RENAME COLUMN last_seq TO floor_seq;
