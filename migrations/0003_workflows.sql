-- Workflow projections (the seed's WorkflowRepository tables, plus what the
-- log needs: the seq of the event that last touched each row, and the seq of
-- the event that created a run or step attempt, which orders them). Lease
-- expiry is not here: heartbeats are not logged, so it could not be rebuilt;
-- the daemon keeps it in memory.
CREATE TABLE workflows (
    id            TEXT PRIMARY KEY,
    name          TEXT    NOT NULL,
    owner_type    TEXT    NOT NULL CHECK (owner_type IN ('global', 'bot')),
    owner_bot_id  TEXT,                    -- set exactly when owner_type = 'bot'
    definition    TEXT    NOT NULL,        -- the whole definition, as JSON text
    created_at    INTEGER NOT NULL,        -- UTC microseconds
    updated_at    INTEGER NOT NULL,
    archived_at   INTEGER,                 -- set while archived
    last_seq      INTEGER NOT NULL,
    CHECK ((owner_type = 'bot') = (owner_bot_id IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX workflows_by_name_owner ON workflows(name, owner_type, COALESCE(owner_bot_id, ''));

CREATE TABLE workflow_runs (
    id                TEXT PRIMARY KEY,
    workflow_id       TEXT    NOT NULL,
    workflow_name     TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'paused', 'completed',
                                                        'failed', 'crashed', 'cancelled')),
    trigger_type      TEXT    NOT NULL,
    trigger_payload   TEXT,                -- JSON text
    context           TEXT    NOT NULL,    -- JSON text
    started_at        INTEGER NOT NULL,    -- UTC microseconds
    completed_at      INTEGER,             -- set in a terminal status
    error             TEXT,
    concurrency_key   TEXT,
    lease_owner       TEXT,                -- the executor holding the run; set while running
    cancel_requested  INTEGER NOT NULL CHECK (cancel_requested IN (0, 1)),
    start_seq         INTEGER NOT NULL,    -- seq of run.started: "newest first" order
    last_seq          INTEGER NOT NULL
) STRICT;
CREATE INDEX workflow_runs_by_workflow ON workflow_runs(workflow_id, start_seq);
CREATE INDEX workflow_runs_by_status ON workflow_runs(status, start_seq);
CREATE INDEX workflow_runs_by_start ON workflow_runs(start_seq);

-- One row per step attempt; id = idempotency_key = '<run_id>:<step_id>:<attempt>'
-- (step ids cannot contain ':', so the key is unambiguous).
CREATE TABLE workflow_steps (
    id               TEXT PRIMARY KEY,
    run_id           TEXT    NOT NULL,
    step_id          TEXT    NOT NULL,
    step_name        TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed',
                                                       'skipped', 'waiting_approval')),
    attempt          INTEGER NOT NULL CHECK (attempt >= 1),
    idempotency_key  TEXT    NOT NULL,
    input            TEXT,                 -- JSON text
    output           TEXT,                 -- JSON text
    error            TEXT,
    will_retry       INTEGER NOT NULL CHECK (will_retry IN (0, 1)),
    skip_reason      TEXT,
    approved_by      TEXT,
    started_at       INTEGER NOT NULL,     -- UTC microseconds
    completed_at     INTEGER,
    start_seq        INTEGER NOT NULL,     -- seq of the event that created the row: start order
    last_seq         INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX workflow_steps_by_attempt ON workflow_steps(run_id, step_id, attempt);
CREATE INDEX workflow_steps_by_start ON workflow_steps(run_id, start_seq);
