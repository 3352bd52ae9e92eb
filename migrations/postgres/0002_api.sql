-- API keys, the intent outbox, cooldowns, latest scores, success plans and
-- the evaluation marker that lets a restarted host finish what it acknowledged.

-- The profile columns the score listing filters on.
ALTER TABLE accounts ADD COLUMN tier TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN industry TEXT NOT NULL DEFAULT '';

-- Set when the event's evaluation (scores, intents, cooldowns) is committed;
-- events acknowledged but not yet evaluated are picked up again on start.
ALTER TABLE events ADD COLUMN evaluated_at BIGINT;
CREATE INDEX events_unevaluated ON events (seq) WHERE evaluated_at IS NULL;

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,        -- the public part of the key
    role        TEXT NOT NULL,           -- viewer, operator or admin
    secret_hash TEXT NOT NULL,           -- SHA-256 of the secret part
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  BIGINT
);

-- The newest score of each name per account, for listing and filtering.
CREATE TABLE latest_scores (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    band        TEXT NOT NULL,
    score_seq   BIGINT NOT NULL,         -- the row in `scores`
    computed_at BIGINT NOT NULL,
    stale       BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE INDEX latest_scores_band ON latest_scores (name, band, account_id);

-- Dedup keys on cooldown, per account (`plugin/key`).
CREATE TABLE cooldowns (
    account_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    until       BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);

-- The outbox: every intent planned by a plugin or requested through the
-- API, and its delivery state.
CREATE TABLE intents (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,   -- account/plugin/idempotency-key
    account_id      TEXT NOT NULL,
    event_id        TEXT,
    source          TEXT NOT NULL,          -- plugin@version, or key:<id>
    plugin_digest   TEXT,
    signal          TEXT NOT NULL,
    kind            TEXT NOT NULL,          -- notify, task, escalate, schedule, webhook, freeze
    timing          TEXT NOT NULL,
    body            TEXT NOT NULL,          -- the intent, JSON
    state           TEXT NOT NULL,          -- pending, delivered, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    planned_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX intents_pending ON intents (seq) WHERE state = 'pending';
CREATE INDEX intents_account ON intents (account_id, seq);

CREATE TABLE success_plans (
    account_id  TEXT PRIMARY KEY,
    plan        TEXT NOT NULL,           -- JSON
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);

-- Signals raised by evaluations and what became of them (acted,
-- suppressed, not-applicable, action-failed): the decision record.
CREATE TABLE signals (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    source       TEXT NOT NULL,          -- plugin@version
    name         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    disposition  TEXT NOT NULL,          -- JSON: {"disposition": …, …}
    evaluated_at BIGINT NOT NULL
);
CREATE INDEX signals_event ON signals (event_id);
