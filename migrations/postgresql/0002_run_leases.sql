-- The leases of running runs (as migrations/0014_run_leases.sql for SQLite):
-- written beside the log, in the batch of the request that grants, renews or
-- ends one, so an executor may heartbeat through any node and the node
-- holding the cluster's timers sees when a lease runs out.
CREATE TABLE run_leases (
    run_id      TEXT COLLATE "C" PRIMARY KEY,
    expires_at  BIGINT NOT NULL        -- UTC microseconds
);
CREATE INDEX run_leases_by_expiry ON run_leases(expires_at, run_id);

INSERT INTO run_leases (run_id, expires_at) SELECT id, 0 FROM workflow_runs WHERE status = 'running';
