//! The store: one interface over two sqlx backends, PostgreSQL (the shared
//! store) and SQLite (the embedded default, a file). Queries are checked at
//! run time; the same SQL text serves both where the dialects agree.
//!
//! Every write that the API acknowledges is committed together with its
//! audit entry, in one transaction.

/// Runs `$body` with `$pool` bound to the backend's pool; the body is
/// compiled once per backend.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Postgres($pool) => $body,
            Store::Sqlite($pool) => $body,
        }
    };
}

mod accounts;
mod audit;
mod copy;
mod events;
mod keys;
mod migrations;
mod outbox;
mod partitions;
mod registry;
mod score_cache;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use accounts::{ScoreFilter, ScoreRow, SuccessPlan};
use audit::AppendAudit;
pub use audit::{AuditEntry, AuditRecord, ChainBreak, GENESIS_HASH};
pub use events::{IngestJob, JobResult, PartitionBatch};
pub use keys::{ApiKeyRecord, Role};
pub use outbox::{
    EvaluationFence, EvaluationWrite, IntentFilter, IntentRecord, IntentState, NewIntent,
    Settlement, SignalRecord, SignalWrite,
};
pub use partitions::{PARTITIONS, PartitionLease, TICK_KIND, TickRun, partition_of};
pub use registry::{
    Deployed, NewPluginVersion, PluginVersion, REGISTRY_CHANNEL, RegistryActor, VersionState,
};
pub use score_cache::{LatestScoreCache, ReadFrom, SCORES_CHANNEL, ScoreWithTrend, ScoreWrite};

use crate::pipeline::ScoreState;
use crate::runtime::ScoreCard;
use crate::runtime::bindings::types::{Account, Event};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one vigil knows.
    #[error("unsupported database URL `{0}`: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An idempotency key was reused with a different body.
    #[error(
        "idempotency key `{key}` was already used with a different body (first event `{first_event}`)"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The event first stored under it.
        first_event: String,
    },
    /// An event id was reused with a different body.
    #[error("event id `{0}` already exists with a different body")]
    EventIdConflict(String),
    /// This host no longer holds the partition it evaluated (another host
    /// took it over, or its lease ran out and was taken again): the
    /// evaluation was not committed.
    #[error("the lease on evaluation partition {part} was lost; the evaluation was not committed")]
    LeaseLost {
        /// The partition.
        part: i32,
    },
    /// A plugin version is quarantined: it cannot serve until released.
    #[error("{name} {version} is quarantined ({reason}); release it before serving it again")]
    Quarantined {
        /// The plugin.
        name: String,
        /// The version.
        version: String,
        /// Why it was quarantined.
        reason: String,
    },
    /// A release was asked for a version that is not quarantined.
    #[error("{name} {version} is not quarantined")]
    NotQuarantined {
        /// The plugin.
        name: String,
        /// The version.
        version: String,
    },
    /// No plugin version has this digest.
    #[error("no plugin version has digest `{0}`")]
    NoSuchVersion(String),
    /// The operating system gave no randomness for a new key.
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
    /// A stored value could not be decoded.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
}

/// The store's backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// PostgreSQL, shared by several hosts.
    Postgres(PgPool),
    /// SQLite, a single file.
    Sqlite(SqlitePool),
}

/// An event to store, as received.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event (its id is the client's or a generated one).
    pub event: Event,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// The canonical request body the key protects.
    pub body: String,
    /// Whether the host generated the id (unique by construction), so no
    /// earlier event can have it and it is not looked up.
    pub generated_id: bool,
}

/// What storing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, at this sequence number.
    New {
        /// The event's sequence number.
        seq: i64,
    },
    /// The same body was stored before under the same key or id; nothing
    /// was written.
    Duplicate {
        /// The id of the event stored the first time.
        first_event: String,
        /// Its sequence number.
        seq: i64,
    },
}

/// How long a PostgreSQL session may sit idle inside a transaction before
/// the server ends it, in milliseconds (the pool's setting; a fence may
/// bound it lower, to what is left of its lease).
pub(crate) const IDLE_IN_TRANSACTION_MS: i64 = 15_000;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite://PATH`, created if
    /// missing) and applies the migrations.
    #[tracing::instrument(name = "vigil.store.connect", skip_all, fields(backend = tracing::field::Empty))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let span = tracing::Span::current();
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            span.record("backend", "postgres");
            // A host paused or cut off inside a transaction would hold the
            // audit chain's lock (and every other host's writes) for as
            // long as its connection lives: the server ends such a session
            // after a while, rolling its transaction back.
            let options = PgConnectOptions::from_str(url)?.options([(
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_MS,
            )]);
            let pool = pg_pool_options(16).connect_with(options).await?;
            Store::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            span.record("backend", "sqlite");
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            // One connection: SQLite has one writer, and a single connection
            // serialises transactions without SQLITE_BUSY upgrades.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Store::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The same database through `connections` connections of its own,
    /// opened on first use — so on the tokio runtime that first uses them,
    /// whose I/O driver then wakes their queries (see the committer in
    /// `service`). SQLite has one connection, shared as it is.
    pub fn with_own_connections(&self, connections: u32) -> Store {
        match self {
            Store::Postgres(pool) => Store::Postgres(
                pg_pool_options(connections).connect_lazy_with((*pool.connect_options()).clone()),
            ),
            Store::Sqlite(pool) => Store::Sqlite(pool.clone()),
        }
    }

    /// The clause that makes a `SELECT` skip rows other transactions hold
    /// (PostgreSQL); SQLite has one writer and needs none.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self {
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Store::Sqlite(_) => "",
        }
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(pool) => migrations::postgres().await?.run(pool).await?,
            Store::Sqlite(pool) => migrations::sqlite().await?.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Creates or replaces an account profile, with its audit entry.
    pub async fn upsert_account(
        &self,
        account: &Account,
        audit: AuditEntry,
    ) -> Result<AuditRecord, StoreError> {
        let profile = serde_json::to_string(account).map_err(|e| StoreError::Corrupt {
            what: "account",
            reason: e.to_string(),
        })?;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO accounts (id, profile, updated_at, tier, industry) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at,
                     tier = excluded.tier, industry = excluded.industry",
            )
            .bind(&account.id)
            .bind(&profile)
            .bind(audit.at)
            .bind(crate::names::tier_name(account.tier))
            .bind(crate::names::industry_name(account.industry))
            .execute(&mut *tx)
            .await?;
            let record = tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(record)
        })
    }

    /// The account profile, if known.
    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let row: Option<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT profile FROM accounts WHERE id = $1").bind(id).fetch_optional(pool).await?
        });
        row.map(|(profile,)| {
            serde_json::from_str(&profile).map_err(|e| StoreError::Corrupt {
                what: "account",
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// The profile versions (`updated_at`) of the accounts `ids` that exist.
    pub async fn account_versions(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let mut versions = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, i64)> = with_pool!(self, pool => {
                let mut query =
                    sqlx::QueryBuilder::new("SELECT id, updated_at FROM accounts WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            versions.extend(rows);
        }
        Ok(versions)
    }

    /// An account's events in time order.
    pub async fn events_for(&self, account_id: &str) -> Result<Vec<Event>, StoreError> {
        self.events_of(account_id, "").await
    }

    /// An account's evaluated events in time order (what its state is
    /// rebuilt from).
    pub async fn evaluated_events_for(&self, account_id: &str) -> Result<Vec<Event>, StoreError> {
        self.events_of(
            account_id,
            " AND seq <= (SELECT evaluated_seq FROM partitions p WHERE p.part = events.part)",
        )
        .await
    }

    /// An account's events matching the fixed SQL condition `and`.
    async fn events_of(
        &self,
        account_id: &str,
        and: &'static str,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT id, account_id, kind, occurred_at, payload FROM events
             WHERE account_id = $1{and} ORDER BY occurred_at, seq"
        );
        let rows: Vec<(String, String, String, i64, String)> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(account_id).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, account_id, kind, occurred_at, payload)| Event {
                id,
                account_id,
                kind,
                occurred_at,
                payload,
            })
            .collect())
    }

    /// Which of `ids` are known accounts (one query per 500 ids).
    pub async fn known_accounts(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String,)> = with_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new("SELECT id FROM accounts WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            known.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(known)
    }

    /// `(name, computed_at, value)` of every fresh score of an account,
    /// oldest first (the score part of its metric history).
    pub async fn fresh_scores_for(
        &self,
        account_id: &str,
    ) -> Result<Vec<(String, i64, f64)>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT name, computed_at, value FROM scores
                 WHERE account_id = $1 AND stale = FALSE ORDER BY computed_at, seq",
            )
            .bind(account_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The latest score of each name of an account.
    pub async fn latest_scores_for(&self, account_id: &str) -> Result<Vec<ScoreState>, StoreError> {
        let names: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT name FROM latest_scores WHERE account_id = $1 ORDER BY name")
                .bind(account_id)
                .fetch_all(pool)
                .await?
        });
        let mut scores = Vec::with_capacity(names.len());
        for (name,) in names {
            if let Some(score) = self.latest_score(account_id, &name).await? {
                scores.push(score);
            }
        }
        Ok(scores)
    }

    /// The newest score called `name` of an account, with its change in
    /// points against the newest score at least each of `ages_ms` older
    /// (`None` where there is none), in one round trip: the latest row and
    /// each baseline are the first entry of a backward scan of the
    /// `(account_id, name, computed_at, seq)` index, however long the
    /// account's history is.
    pub async fn latest_score_with_trend(
        &self,
        account_id: &str,
        name: &str,
        ages_ms: [i64; 3],
    ) -> Result<Option<ScoreWithTrend>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            bool,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        // Ties on `computed_at` go to the later row, as in `latest_score`.
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT s.card, s.plugin_name, s.plugin_version, s.plugin_digest, s.computed_at, s.stale,
                        (SELECT b.value FROM scores b WHERE b.account_id = s.account_id AND b.name = s.name
                           AND b.computed_at <= s.computed_at - $3 ORDER BY b.computed_at DESC, b.seq DESC LIMIT 1),
                        (SELECT b.value FROM scores b WHERE b.account_id = s.account_id AND b.name = s.name
                           AND b.computed_at <= s.computed_at - $4 ORDER BY b.computed_at DESC, b.seq DESC LIMIT 1),
                        (SELECT b.value FROM scores b WHERE b.account_id = s.account_id AND b.name = s.name
                           AND b.computed_at <= s.computed_at - $5 ORDER BY b.computed_at DESC, b.seq DESC LIMIT 1)
                 FROM scores s
                 WHERE s.account_id = $1 AND s.name = $2 ORDER BY s.computed_at DESC, s.seq DESC LIMIT 1",
            )
            .bind(account_id)
            .bind(name)
            .bind(ages_ms[0])
            .bind(ages_ms[1])
            .bind(ages_ms[2])
            .fetch_optional(pool)
            .await?
        });
        row.map(
            |(card, plugin_name, version, digest, computed_at, stale, b0, b1, b2)| {
                let score = score_state(card, plugin_name, version, digest, computed_at, stale)?;
                let change = |baseline: Option<f64>| baseline.map(|b| score.card.value - b);
                let trend = [change(b0), change(b1), change(b2)];
                Ok((score, trend))
            },
        )
        .transpose()
    }

    /// The newest score called `name` of an account.
    pub async fn latest_score(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<ScoreState>, StoreError> {
        type Row = (String, String, String, String, i64, bool);
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT card, plugin_name, plugin_version, plugin_digest, computed_at, stale FROM scores
                 WHERE account_id = $1 AND name = $2 ORDER BY computed_at DESC, seq DESC LIMIT 1",
            )
            .bind(account_id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(card, name, version, digest, computed_at, stale)| {
            score_state(card, name, version, digest, computed_at, stale)
        })
        .transpose()
    }

    /// Appends an audit entry on its own.
    pub async fn audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let record = tx.append_audit(entry).await?;
            tx.commit().await?;
            Ok(record)
        })
    }

    /// Up to `limit` audit records after sequence number `after`.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        audit::page(self, after, limit).await
    }

    /// Walks the whole audit chain; `Ok(None)` when it is intact, otherwise
    /// the first entry that breaks it.
    pub async fn verify_audit(&self) -> Result<(u64, Option<ChainBreak>), StoreError> {
        audit::verify(self).await
    }
}

/// A PostgreSQL pool of at most `connections`. No ping before handing out
/// a pooled connection: it is one more round trip per statement (serial
/// health-score reads: mean 0.27–0.29 ms with it, 0.24–0.25 ms without;
/// BENCHMARKS.md, Service). A connection the server closed fails its next
/// statement and is dropped from the pool.
fn pg_pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
}

/// A stored score row as a [`ScoreState`].
fn score_state(
    card: String,
    name: String,
    version: String,
    digest: String,
    computed_at: i64,
    stale: bool,
) -> Result<ScoreState, StoreError> {
    let card: ScoreCard = serde_json::from_str(&card).map_err(|e| StoreError::Corrupt {
        what: "score card",
        reason: e.to_string(),
    })?;
    Ok(ScoreState {
        card: Arc::new(card),
        plugin: crate::pipeline::PluginRef::new(name, version, digest),
        computed_at,
        stale,
    })
}
