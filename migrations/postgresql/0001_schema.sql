-- The whole schema for PostgreSQL, as SQLite's migrations 0001..0013 leave
-- it (the comments there say why each table is as it is). Later changes
-- come as further numbered files here, checksummed like SQLite's.
--
-- Text that is compared or ordered (names, streams) is COLLATE "C": byte
-- order, as in SQLite, whatever locale the database was created with (the
-- stream name ranges 'ch/'..'ch0' rely on it). Integers are BIGINT (SQLite's
-- INTEGER is 64 bits), blobs BYTEA.

-- The append-only event log: the source of truth.
CREATE TABLE events (
    seq          BIGINT PRIMARY KEY,          -- global, gap-free, in commit order
    ts_us        BIGINT NOT NULL,
    stream       TEXT COLLATE "C" NOT NULL,
    stream_seq   BIGINT NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    producer     TEXT COLLATE "C" NOT NULL,
    idem_key     TEXT COLLATE "C",
    payload      BYTEA NOT NULL,
    hash         BYTEA                        -- the chain hash, on a commit's last event
);
CREATE UNIQUE INDEX events_by_idem_key ON events(producer, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX events_by_stream ON events(stream, seq);
CREATE INDEX events_by_sender ON events(stream, producer, seq) WHERE type = 'message.sent';

-- The log's head. Every node's write transaction locks this row first
-- (SELECT ... FOR UPDATE), so batches from any number of nodes commit one
-- at a time and seq order is commit order.
CREATE TABLE log_head (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq       BIGINT NOT NULL,
    last_hash      BYTEA,
    chain_start    BIGINT NOT NULL DEFAULT 0,
    event_count    BIGINT NOT NULL DEFAULT 0,
    message_count  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO log_head (id, last_seq) VALUES (1, 0);

CREATE TABLE streams (
    stream            TEXT COLLATE "C" PRIMARY KEY,
    floor_stream_seq  BIGINT NOT NULL,
    floor_seq         BIGINT NOT NULL
);

CREATE TABLE trimmed_ranges (
    first_seq  BIGINT PRIMARY KEY,
    last_seq   BIGINT NOT NULL UNIQUE,
    last_hash  BYTEA NOT NULL
);

-- Messaging projections.
CREATE TABLE bot_channels (
    name          TEXT COLLATE "C" PRIMARY KEY,
    description   TEXT,
    created_by    TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL,
    max_age_ms    BIGINT,
    max_messages  BIGINT
);

CREATE TABLE bot_subscriptions (
    bot_id         TEXT COLLATE "C" NOT NULL,
    channel_name   TEXT COLLATE "C" NOT NULL,
    subscribed_at  BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL,
    PRIMARY KEY (bot_id, channel_name)
);
CREATE INDEX bot_subscriptions_by_channel ON bot_subscriptions(channel_name, bot_id);

CREATE TABLE bot_mailboxes (
    bot_id     TEXT COLLATE "C" PRIMARY KEY,
    acked_seq  BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL
);

CREATE TABLE mailbox_settled (
    bot_id   TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    outcome  TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('acked', 'expired', 'dead_lettered')),
    PRIMARY KEY (bot_id, seq)
);

CREATE TABLE dead_letters (
    seq           BIGINT PRIMARY KEY,
    message_seq   BIGINT NOT NULL,
    bot_id        TEXT COLLATE "C" NOT NULL,
    channel       TEXT COLLATE "C",
    reason        TEXT NOT NULL,
    deliveries    BIGINT NOT NULL,
    dead_at       BIGINT NOT NULL,
    replayed_seq  BIGINT,
    UNIQUE (message_seq, bot_id)
);
CREATE INDEX dead_letters_by_bot ON dead_letters(bot_id, seq);

CREATE TABLE channel_consumers (
    bot_id      TEXT COLLATE "C" NOT NULL,
    channel     TEXT COLLATE "C" NOT NULL,
    acked_seq   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,
    PRIMARY KEY (bot_id, channel)
);
CREATE INDEX channel_consumers_by_channel ON channel_consumers(channel, bot_id);

CREATE TABLE consumer_settled (
    bot_id   TEXT COLLATE "C" NOT NULL,
    channel  TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    outcome  TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('acked', 'dead_lettered')),
    PRIMARY KEY (bot_id, channel, seq)
);

CREATE TABLE acl_rules (
    bot         TEXT COLLATE "C" NOT NULL,
    permission  TEXT COLLATE "C" NOT NULL CHECK (permission IN ('publish', 'read', 'admin')),
    channel     TEXT COLLATE "C" NOT NULL,
    granted_by  TEXT COLLATE "C" NOT NULL,
    granted_at  BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,
    PRIMARY KEY (bot, permission, channel)
);

-- Delivery attempts, beside the log (not a projection of it).
CREATE TABLE delivery_marks (
    bot_id          TEXT COLLATE "C" NOT NULL,
    channel         TEXT COLLATE "C" NOT NULL,
    delivered_upto  BIGINT NOT NULL,
    PRIMARY KEY (bot_id, channel)
);

CREATE TABLE delivery_counts (
    bot_id      TEXT COLLATE "C" NOT NULL,
    channel     TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    deliveries  BIGINT NOT NULL,
    PRIMARY KEY (bot_id, channel, seq)
);

CREATE TABLE mailbox_expiries (
    bot_id      TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (bot_id, seq)
);
CREATE INDEX mailbox_expiries_by_time ON mailbox_expiries(expires_at, bot_id, seq);

-- Workflow projections.
CREATE TABLE workflows (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    owner_type    TEXT COLLATE "C" NOT NULL CHECK (owner_type IN ('global', 'bot')),
    owner_bot_id  TEXT COLLATE "C",
    definition    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    archived_at   BIGINT,
    last_seq      BIGINT NOT NULL,
    CHECK ((owner_type = 'bot') = (owner_bot_id IS NOT NULL))
);
CREATE UNIQUE INDEX workflows_by_name_owner ON workflows(name, owner_type, COALESCE(owner_bot_id, ''));

CREATE TABLE workflow_runs (
    id                TEXT COLLATE "C" PRIMARY KEY,
    workflow_id       TEXT COLLATE "C" NOT NULL,
    workflow_name     TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'running', 'paused', 'completed',
                                                                 'failed', 'crashed', 'cancelled')),
    trigger_type      TEXT NOT NULL,
    trigger_payload   TEXT,
    context           TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    completed_at      BIGINT,
    error             TEXT,
    concurrency_key   TEXT COLLATE "C",
    lease_owner       TEXT COLLATE "C",
    cancel_requested  BIGINT NOT NULL CHECK (cancel_requested IN (0, 1)),
    start_seq         BIGINT NOT NULL,
    last_seq          BIGINT NOT NULL,
    owner_bot         TEXT COLLATE "C"
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs(workflow_id, start_seq);
CREATE INDEX workflow_runs_by_status ON workflow_runs(status, start_seq);
CREATE INDEX workflow_runs_by_start ON workflow_runs(start_seq);

CREATE TABLE workflow_steps (
    id               TEXT COLLATE "C" PRIMARY KEY,
    run_id           TEXT COLLATE "C" NOT NULL,
    step_id          TEXT COLLATE "C" NOT NULL,
    step_name        TEXT,
    status           TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed',
                                                                'skipped', 'waiting_approval')),
    attempt          BIGINT NOT NULL CHECK (attempt >= 1),
    idempotency_key  TEXT COLLATE "C" NOT NULL,
    input            TEXT,
    output           TEXT,
    error            TEXT,
    will_retry       BIGINT NOT NULL CHECK (will_retry IN (0, 1)),
    skip_reason      TEXT,
    approved_by      TEXT COLLATE "C",
    started_at       BIGINT NOT NULL,
    completed_at     BIGINT,
    start_seq        BIGINT NOT NULL,
    last_seq         BIGINT NOT NULL
);
CREATE UNIQUE INDEX workflow_steps_by_attempt ON workflow_steps(run_id, step_id, attempt);
CREATE INDEX workflow_steps_by_start ON workflow_steps(run_id, start_seq);

-- What stats reports of rarely-changing projections, counted by triggers
-- (a rolled-back savepoint takes its counting with it).
CREATE TABLE projection_counts (
    name   TEXT COLLATE "C" PRIMARY KEY,
    count  BIGINT NOT NULL
);
INSERT INTO projection_counts (name, count) VALUES ('channels', 0), ('subscriptions', 0);

CREATE FUNCTION botbus_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projection_counts SET count = count + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END
    WHERE name = TG_ARGV[0];
    RETURN NULL;
END;
$$;
CREATE TRIGGER bot_channels_count AFTER INSERT OR DELETE ON bot_channels
    FOR EACH ROW EXECUTE FUNCTION botbus_count_rows('channels');
CREATE TRIGGER bot_subscriptions_count AFTER INSERT OR DELETE ON bot_subscriptions
    FOR EACH ROW EXECUTE FUNCTION botbus_count_rows('subscriptions');
