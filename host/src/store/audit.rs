//! The audit log: append-only, hash-chained. Each entry's hash covers the
//! previous entry's hash and the entry's content, length-prefixed field by
//! field so that no content can shift between fields. The newest entry is
//! also kept in `audit_head`, written in the same transaction, so a deleted
//! tail is detected too.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use super::copy::BinaryRows;
use super::{Store, StoreError};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Serialises appends on PostgreSQL (`pg_advisory_xact_lock`).
const AUDIT_LOCK: i64 = 0x7669_6769_6c61_7564;

/// Entries read per round trip while verifying.
const VERIFY_PAGE: i64 = 10_000;

/// Something to record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at: i64,
    /// Who: `key:<id>`, `host:<name>`, `plugin:<name>@<version>`, …
    pub actor: String,
    /// What: `account.upsert`, `event.ingest`, `intent.planned`, …
    pub action: String,
    /// The resource affected: `account:acme`, `event:e-1`, …
    pub resource: String,
    /// Where the request came from (an address, `cli`, `pipeline`).
    pub origin: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Anything else, as JSON.
    pub details: serde_json::Value,
}

/// An entry as stored in the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Its position, from 1.
    pub seq: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The first sequence number that does not verify.
    pub seq: i64,
    /// Why.
    pub reason: String,
}

/// The hash of an entry at `seq` after `prev_hash`; `details` is the stored
/// JSON text, hashed as stored.
fn chain_hash(prev_hash: &str, seq: i64, entry: &AuditEntry, details: &str) -> String {
    let mut hasher = Sha256::new();
    for field in [
        prev_hash,
        &seq.to_string(),
        &entry.at.to_string(),
        &entry.actor,
        &entry.action,
        &entry.resource,
        &entry.origin,
        if entry.success { "1" } else { "0" },
        details,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Rows per multi-row insert (SQLite).
const APPEND_CHUNK: usize = 500;

/// Appending entries inside a transaction of either backend.
pub(super) trait AppendAudit {
    /// Appends `entry` after the current head.
    async fn append_audit(&mut self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let mut records = self.append_audit_many(vec![entry]).await?;
        records.pop().ok_or(StoreError::Corrupt {
            what: "audit append",
            reason: "no record written".into(),
        })
    }

    /// Appends `entries` in order after the current head; the records.
    async fn append_audit_many(
        &mut self,
        entries: Vec<AuditEntry>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let placed = {
            let refs: Vec<&AuditEntry> = entries.iter().collect();
            self.append_audit_refs(&refs).await?
        };
        Ok(entries
            .into_iter()
            .zip(placed)
            .map(|(entry, (seq, prev_hash, hash))| AuditRecord {
                seq,
                entry,
                prev_hash,
                hash,
            })
            .collect())
    }

    /// Takes the chain's lock until the transaction ends (PostgreSQL; on
    /// SQLite the single connection serialises transactions already).
    async fn lock_chain(&mut self) -> Result<(), StoreError>;

    /// Appends `entries` in order after the current head, in multi-row
    /// inserts (one lock, one head update), without copying them; each
    /// one's `(seq, prev_hash, hash)`.
    async fn append_audit_refs(
        &mut self,
        entries: &[&AuditEntry],
    ) -> Result<Vec<(i64, String, String)>, StoreError>;
}

/// An entry placed in the chain, ready to insert.
struct Chained<'a> {
    seq: i64,
    entry: &'a AuditEntry,
    details: String,
    prev_hash: String,
    hash: String,
}

/// Writing chained entries, per backend: PostgreSQL takes them by binary
/// `COPY`, SQLite as a multi-row `VALUES` list under its bind limit.
trait AuditRows {
    /// Inserts `rows`.
    async fn insert_audit_rows(&mut self, rows: &[Chained<'_>]) -> Result<(), StoreError>;
}

impl AuditRows for Transaction<'_, Postgres> {
    async fn insert_audit_rows(&mut self, rows: &[Chained<'_>]) -> Result<(), StoreError> {
        let mut copy = BinaryRows::new(10, rows.len() * 384);
        for row in rows {
            copy.row()
                .int8(row.seq)
                .int8(row.entry.at)
                .text(&row.entry.actor)?
                .text(&row.entry.action)?
                .text(&row.entry.resource)?
                .text(&row.entry.origin)?
                .bool(row.entry.success)
                .text(&row.details)?
                .text(&row.prev_hash)?
                .text(&row.hash)?;
        }
        copy.copy_into(
            self,
            "COPY audit_log (seq, at, actor, action, resource, origin, success, details, prev_hash, hash)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
        Ok(())
    }
}

impl AuditRows for Transaction<'_, Sqlite> {
    async fn insert_audit_rows(&mut self, rows: &[Chained<'_>]) -> Result<(), StoreError> {
        for chunk in rows.chunks(APPEND_CHUNK) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (seq, at, actor, action, resource, origin, success, details, prev_hash, hash) ",
            );
            query.push_values(chunk, |mut row, chained| {
                row.push_bind(chained.seq)
                    .push_bind(chained.entry.at)
                    .push_bind(&chained.entry.actor)
                    .push_bind(&chained.entry.action)
                    .push_bind(&chained.entry.resource)
                    .push_bind(&chained.entry.origin)
                    .push_bind(chained.entry.success)
                    .push_bind(&chained.details)
                    .push_bind(&chained.prev_hash)
                    .push_bind(&chained.hash);
            });
            query.build().execute(&mut **self).await?;
        }
        Ok(())
    }
}

macro_rules! append_audit_for {
    ($db:ty, $lock:expr) => {
        impl AppendAudit for Transaction<'_, $db> {
            async fn lock_chain(&mut self) -> Result<(), StoreError> {
                if let Some(lock) = $lock {
                    sqlx::query(lock).bind(AUDIT_LOCK).execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn append_audit_refs(
                &mut self,
                entries: &[&AuditEntry],
            ) -> Result<Vec<(i64, String, String)>, StoreError> {
                if entries.is_empty() {
                    return Ok(Vec::new());
                }
                self.lock_chain().await?;
                let head: Option<(i64, String)> =
                    sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut **self)
                        .await?;
                let (mut seq, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
                let mut rows = Vec::with_capacity(entries.len());
                for entry in entries {
                    seq += 1;
                    let details = entry.details.to_string();
                    let hash = chain_hash(&prev_hash, seq, entry, &details);
                    rows.push(Chained {
                        seq,
                        entry,
                        details,
                        prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                        hash,
                    });
                }
                self.insert_audit_rows(&rows).await?;
                sqlx::query(
                    "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
                     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                )
                .bind(seq)
                .bind(&prev_hash)
                .execute(&mut **self)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.seq, row.prev_hash, row.hash))
                    .collect())
            }
        }
    };
}

append_audit_for!(Postgres, Some("SELECT pg_advisory_xact_lock($1)"));
append_audit_for!(Sqlite, None::<&str>);

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    bool,
    String,
    String,
    String,
);

fn record(row: Row) -> Result<(AuditRecord, String), StoreError> {
    let (seq, at, actor, action, resource, origin, success, details, prev_hash, hash) = row;
    let parsed = serde_json::from_str(&details).map_err(|e| StoreError::Corrupt {
        what: "audit details",
        reason: format!("entry {seq}: {e}"),
    })?;
    Ok((
        AuditRecord {
            seq,
            entry: AuditEntry {
                at,
                actor,
                action,
                resource,
                origin,
                success,
                details: parsed,
            },
            prev_hash,
            hash,
        },
        details,
    ))
}

async fn rows(store: &Store, after: i64, limit: i64) -> Result<Vec<Row>, StoreError> {
    const SELECT: &str =
        "SELECT seq, at, actor, action, resource, origin, success, details, prev_hash, hash
         FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";
    Ok(match store {
        Store::Postgres(pool) => {
            sqlx::query_as(SELECT)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        Store::Sqlite(pool) => {
            sqlx::query_as(SELECT)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    })
}

pub(super) async fn page(
    store: &Store,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    rows(store, after, limit)
        .await?
        .into_iter()
        .map(|row| record(row).map(|(record, _)| record))
        .collect()
}

fn broken(checked: u64, seq: i64, reason: String) -> Result<(u64, Option<ChainBreak>), StoreError> {
    Ok((checked, Some(ChainBreak { seq, reason })))
}

/// The chain's head record: the newest entry's sequence number and hash.
async fn read_head(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    const SELECT: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
    Ok(match store {
        Store::Postgres(pool) => sqlx::query_as(SELECT).fetch_optional(pool).await?,
        Store::Sqlite(pool) => sqlx::query_as(SELECT).fetch_optional(pool).await?,
    })
}

#[tracing::instrument(name = "vigil.audit.verify", skip_all, fields(backend = store.backend()))]
pub(super) async fn verify(store: &Store) -> Result<(u64, Option<ChainBreak>), StoreError> {
    // The head is read first. It is written in the same transaction as the
    // entry it names, so every entry up to it was committed when it was
    // read, and entries a live host appends while the chain is walked lie
    // beyond it. (Read last, it was sometimes ahead of the entries walked,
    // and those appends were reported as entries missing from the end.)
    let head = read_head(store).await?;
    let end = head.as_ref().map_or(0, |(seq, _)| *seq);
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut checked = 0u64;
    // Whether there are entries beyond the head read.
    let mut beyond = false;
    'walk: loop {
        let page = rows(store, expected_seq - 1, VERIFY_PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let seq = row.0;
            if seq > end {
                beyond = true;
                break 'walk;
            }
            let (record, details) = match record(row) {
                Ok(decoded) => decoded,
                Err(error) => return broken(checked, seq, error.to_string()),
            };
            if seq != expected_seq {
                return broken(
                    checked,
                    expected_seq,
                    format!("entry {expected_seq} is missing (the next entry is {seq})"),
                );
            }
            if record.prev_hash != prev_hash {
                return broken(
                    checked,
                    seq,
                    "its previous hash does not match the entry before it".into(),
                );
            }
            if chain_hash(&prev_hash, seq, &record.entry, &details) != record.hash {
                return broken(checked, seq, "its content does not match its hash".into());
            }
            prev_hash = record.hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let last = expected_seq - 1;
    // Entries beyond the head are appends made during the walk only if the
    // head has moved since; otherwise they were put there without it.
    let appended = beyond && read_head(store).await?.map_or(0, |(seq, _)| seq) > end;
    match head {
        None if !beyond || appended => Ok((checked, None)),
        None => broken(checked, 1, "the chain's head record is missing".into()),
        Some((seq, _)) if seq > last => broken(
            checked,
            last + 1,
            format!("entries {} to {seq} are missing from the end", last + 1),
        ),
        // Here `seq` is `last`: the walk stopped at the head.
        Some((_, hash)) if hash == prev_hash && (!beyond || appended) => Ok((checked, None)),
        Some((seq, _)) => broken(
            checked,
            seq.max(1),
            "the chain's head record does not match the last entry".into(),
        ),
    }
}
