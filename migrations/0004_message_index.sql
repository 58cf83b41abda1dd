-- Messages are read straight from the log. A message's fields are all in its
-- event, so bot_messages copied every message a second time: twice the bytes
-- written per publish and a second insert on the hottest path. Its indexes
-- move onto events: channel history and inboxes read a stream by seq
-- ('ch/<channel>', 'dm/<bot>'), conversations read the direct messages of a
-- stream by sender.
DROP TABLE bot_messages;

-- Was (stream, stream_seq): reads bound streams by the global seq, and within
-- a stream both orders agree.
DROP INDEX events_by_stream;
CREATE INDEX events_by_stream ON events(stream, seq);

CREATE INDEX events_by_sender ON events(stream, producer, seq) WHERE type = 'message.sent';
