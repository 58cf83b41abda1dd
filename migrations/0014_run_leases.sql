-- The leases of running runs: until when each run's executor holds it
-- (run.start/run.resume grant one, run.heartbeat renews it). Not a
-- projection of the log: heartbeats are not logged, so the daemon writes
-- these rows beside it, in the transaction of the request's batch, and a
-- rebuild from the log leaves the table empty (the lease check then gives
-- every running run a full lease period). A table rather than the daemon's
-- memory so that, with several nodes on one log, an executor may heartbeat
-- through any node and the node that runs the lease check sees it.
CREATE TABLE run_leases (
    run_id      TEXT    PRIMARY KEY,
    expires_at  INTEGER NOT NULL        -- UTC microseconds
) STRICT, WITHOUT ROWID;
CREATE INDEX run_leases_by_expiry ON run_leases(expires_at, run_id);

-- Runs left running by a daemon from before this table: the lease check's
-- grace at start-up gives them a full period.
INSERT INTO run_leases (run_id, expires_at) SELECT id, 0 FROM workflow_runs WHERE status = 'running';
