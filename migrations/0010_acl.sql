-- Permissions (issue 12): the rules granted with acl.grant and not revoked,
-- one row each, replayed from acl.granted / acl.revoked on stream sys/acl.
-- The core keeps them in memory (bus/core/acl.hpp); this table is what it
-- loads at start and what a rebuild reproduces.
CREATE TABLE acl_rules (
    bot         TEXT    NOT NULL,   -- a bot pattern: a name, a prefix ending in '*', or '*'
    permission  TEXT    NOT NULL CHECK (permission IN ('publish', 'read', 'admin')),
    channel     TEXT    NOT NULL,   -- a channel pattern, the same forms
    granted_by  TEXT    NOT NULL,
    granted_at  INTEGER NOT NULL,   -- UTC microseconds
    last_seq    INTEGER NOT NULL,
    PRIMARY KEY (bot, permission, channel)
) STRICT, WITHOUT ROWID;

-- A run's owner: the bot that started it or last resumed it, who may resume
-- it after a crash (no lease holder then) and cancel or approve in it.
-- Filled for existing runs from the log, as a replay would fill it.
ALTER TABLE workflow_runs ADD COLUMN owner_bot TEXT;
UPDATE workflow_runs SET owner_bot = (
    SELECT producer FROM events
    WHERE events.stream = 'run/' || workflow_runs.id AND events.type IN ('run.started', 'run.resumed')
    ORDER BY events.seq DESC LIMIT 1);
