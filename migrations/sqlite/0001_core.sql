-- Accounts, events, score history and the audit chain.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    profile     TEXT NOT NULL,          -- the account snapshot, JSON
    updated_at  BIGINT NOT NULL         -- ms since the epoch
);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    payload         TEXT NOT NULL,       -- JSON object
    idempotency_key TEXT UNIQUE,
    body_digest     TEXT NOT NULL,       -- SHA-256 of the request body
    received_at     BIGINT NOT NULL
);
CREATE INDEX events_account ON events (account_id, occurred_at);

CREATE TABLE scores (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    value           REAL NOT NULL,
    band            TEXT NOT NULL,
    card            TEXT NOT NULL,       -- the score card, JSON
    plugin_name     TEXT NOT NULL,
    plugin_version  TEXT NOT NULL,
    plugin_digest   TEXT NOT NULL,
    computed_at     BIGINT NOT NULL,
    stale           INTEGER NOT NULL
);
CREATE INDEX scores_account ON scores (account_id, name, computed_at);

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    origin      TEXT NOT NULL,
    success     INTEGER NOT NULL,
    details     TEXT NOT NULL,           -- JSON
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- The newest entry of the chain, written in the same transaction as the
-- entry: a deleted tail no longer matches it.
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
