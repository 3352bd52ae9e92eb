-- Several hosts on one store: evaluation partitions with leases and
-- watermarks, the scheduler's leader lease, the host roster, the plugin
-- registry, and claims on outbox deliveries.

-- Each event belongs to its account's partition (a hash of the account
-- id, computed by the host). A partition is evaluated in sequence order by
-- the one host holding its lease; `evaluated_seq` is its watermark: every
-- event of the partition up to it is evaluated. Events are appended in
-- sequence order (inserts are serialised), so the watermark never skips
-- one, and an event row is never updated after it is written.
ALTER TABLE events ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
DROP INDEX events_unevaluated;
CREATE INDEX events_part ON events (part, seq);
-- Most events carry no idempotency key: index only those that do.
ALTER TABLE events DROP CONSTRAINT events_idempotency_key_key;
CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE partitions (
    part          INTEGER PRIMARY KEY,
    evaluated_seq BIGINT NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',     -- the host holding the lease
    term          BIGINT NOT NULL DEFAULT 0,    -- bumped at every takeover (fencing)
    lease_until   BIGINT NOT NULL DEFAULT 0     -- ms since the epoch
);
-- Events stored before this migration are all in partition 0; the
-- evaluated ones form a prefix (they were evaluated in sequence order).
INSERT INTO partitions (part, evaluated_seq)
SELECT p.part,
       CASE WHEN p.part = 0
            THEN COALESCE((SELECT MIN(seq) - 1 FROM events WHERE evaluated_at IS NULL),
                          (SELECT MAX(seq) FROM events), 0)
            ELSE COALESCE((SELECT MAX(seq) FROM events), 0) END
FROM (WITH RECURSIVE n(part) AS (SELECT 0 UNION ALL SELECT part + 1 FROM n WHERE part < 15)
      SELECT part FROM n) AS p;

-- The scheduler runs on one leader at a time.
CREATE TABLE leader_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner       TEXT NOT NULL,
    term        BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
INSERT INTO leader_lease (id, owner, term, lease_until) VALUES (1, '', 0, 0);

-- Hosts announce themselves; the live ones share the partitions.
CREATE TABLE hosts (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

-- The time-based jobs the leader finished, per period.
CREATE TABLE schedule_runs (
    job         TEXT NOT NULL,
    period      BIGINT NOT NULL,
    host        TEXT NOT NULL,
    term        BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    PRIMARY KEY (job, period)
);

-- Which event each score was computed for (the decision record).
ALTER TABLE scores ADD COLUMN event_id TEXT;
CREATE INDEX scores_event ON scores (event_id);

-- A pending intent is claimed by one host's dispatcher at a time.
ALTER TABLE intents ADD COLUMN claimed_by TEXT;
ALTER TABLE intents ADD COLUMN claim_until BIGINT;

-- The plugin registry: every version ever deployed, content-addressed.
CREATE TABLE plugin_versions (
    digest       TEXT PRIMARY KEY,          -- SHA-256 of the component
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    state        TEXT NOT NULL,             -- active, inactive, quarantined
    state_reason TEXT NOT NULL DEFAULT '',
    deployed_by  TEXT NOT NULL,
    deployed_at  BIGINT NOT NULL,
    origin       TEXT NOT NULL,             -- file:<name>, api, standard
    activated_at BIGINT NOT NULL DEFAULT 0  -- when it last became active
);
CREATE INDEX plugin_versions_name ON plugin_versions (name, activated_at);
CREATE UNIQUE INDEX plugin_versions_one_active ON plugin_versions (name) WHERE state = 'active';

-- Bumped by every registry change; hosts poll it (and LISTEN on
-- `vigil_plugins` for a hint) to converge on the active set.
CREATE TABLE registry_clock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO registry_clock (id, version) VALUES (1, 0);
