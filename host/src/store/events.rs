//! Storing events: several requests' batches in one transaction (group
//! commit), each event with its audit entry, with idempotency checked per
//! request so one request's conflict fails that request alone.

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use super::audit::AppendAudit;
use super::copy::BinaryRows;
use super::partitions::partition_of;
use super::{AuditEntry, NewEvent, Store, StoreError, Stored, digest};
use crate::runtime::bindings::types::Event;

/// Rows per multi-row statement (well under both backends' bind limits).
const CHUNK: usize = 500;

/// One request's events and their audit entries, for a group commit.
#[derive(Debug, Clone)]
pub struct IngestJob {
    /// The events, in the request's order.
    pub events: Vec<NewEvent>,
    /// One audit entry per event, in the same order.
    pub audits: Vec<AuditEntry>,
}

/// An event already stored under a key or id: its id, seq and body digest.
#[derive(Debug, Clone)]
struct Existing {
    id: String,
    seq: i64,
    body_digest: String,
}

/// A row found under a key or id: id, seq, body digest, idempotency key.
type ExistingRow = (String, i64, String, Option<String>);

/// An accepted event, its audit entry and its body digest.
type EventRow<'j> = (&'j NewEvent, &'j AuditEntry, String);

/// The unique columns an event is looked up by.
#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    IdempotencyKey,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::IdempotencyKey => "idempotency_key",
        }
    }
}

/// The two statements of a group commit, written per backend: PostgreSQL
/// looks rows up by one array per column (`= ANY`), so a statement has a
/// handful of parameters whatever the group's size, and takes new rows by
/// binary `COPY`; SQLite takes a multi-row `VALUES` list, chunked under
/// its bind limit.
trait EventRows {
    /// The stored events whose `column` is one of `values`.
    async fn existing_events(
        &mut self,
        column: Column,
        values: &[&str],
    ) -> Result<Vec<ExistingRow>, StoreError>;

    /// Inserts `rows`; their ids and sequence numbers.
    async fn insert_event_rows(
        &mut self,
        rows: &[EventRow<'_>],
    ) -> Result<Vec<(String, i64)>, StoreError>;
}

impl EventRows for Transaction<'_, Postgres> {
    async fn existing_events(
        &mut self,
        column: Column,
        values: &[&str],
    ) -> Result<Vec<ExistingRow>, StoreError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, seq, body_digest, idempotency_key FROM events WHERE {} = ANY($1)",
            column.name()
        );
        Ok(sqlx::query_as(&sql)
            .bind(values)
            .fetch_all(&mut **self)
            .await?)
    }

    async fn insert_event_rows(
        &mut self,
        rows: &[EventRow<'_>],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Every event insert holds the audit chain's lock (see
        // `commit_groups`), so a block of sequence numbers can be taken in
        // one statement: the next insert takes the block after it.
        let count = i64::try_from(rows.len()).map_err(|_| StoreError::Corrupt {
            what: "event insert",
            reason: "too many rows".into(),
        })?;
        let (last,): (i64,) = sqlx::query_as(
            "SELECT setval(pg_get_serial_sequence('events', 'seq'),
                           nextval(pg_get_serial_sequence('events', 'seq')) + $1 - 1)",
        )
        .bind(count)
        .fetch_one(&mut **self)
        .await?;
        let first = last - count + 1;
        let mut copy = BinaryRows::new(10, rows.len() * 256);
        let mut inserted = Vec::with_capacity(rows.len());
        for ((new, audit, body_digest), seq) in rows.iter().zip(first..) {
            copy.row()
                .int8(seq)
                .text(&new.event.id)?
                .text(&new.event.account_id)?
                .text(&new.event.kind)?
                .int8(new.event.occurred_at)
                .text(&new.event.payload)?
                .opt_text(new.idempotency_key.as_deref())?
                .text(body_digest)?
                .int8(audit.at)
                .int4(partition_of(&new.event.account_id));
            inserted.push((new.event.id.clone(), seq));
        }
        copy.copy_into(
            self,
            "COPY events (seq, id, account_id, kind, occurred_at, payload, idempotency_key, body_digest, received_at, part)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
        Ok(inserted)
    }
}

impl EventRows for Transaction<'_, Sqlite> {
    async fn existing_events(
        &mut self,
        column: Column,
        values: &[&str],
    ) -> Result<Vec<ExistingRow>, StoreError> {
        let mut found = Vec::new();
        for chunk in values.chunks(CHUNK) {
            let mut query = QueryBuilder::new(format!(
                "SELECT id, seq, body_digest, idempotency_key FROM events WHERE {} IN (",
                column.name()
            ));
            let mut list = query.separated(", ");
            for value in chunk {
                list.push_bind(*value);
            }
            query.push(")");
            found.extend(query.build_query_as().fetch_all(&mut **self).await?);
        }
        Ok(found)
    }

    async fn insert_event_rows(
        &mut self,
        rows: &[EventRow<'_>],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            let mut query = QueryBuilder::new(
                "INSERT INTO events (id, account_id, kind, occurred_at, payload, idempotency_key, body_digest, received_at, part) ",
            );
            query.push_values(chunk, |mut row, (new, audit, body_digest)| {
                row.push_bind(&new.event.id)
                    .push_bind(&new.event.account_id)
                    .push_bind(&new.event.kind)
                    .push_bind(new.event.occurred_at)
                    .push_bind(&new.event.payload)
                    .push_bind(&new.idempotency_key)
                    .push_bind(body_digest)
                    .push_bind(audit.at)
                    .push_bind(partition_of(&new.event.account_id));
            });
            query.push(" RETURNING id, seq");
            inserted.extend(
                query
                    .build_query_as::<(String, i64)>()
                    .fetch_all(&mut **self)
                    .await?,
            );
        }
        Ok(inserted)
    }
}

/// A partition's next events to evaluate, and the lease they were read
/// under.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    /// The partition.
    pub part: i32,
    /// The lease's term when read.
    pub term: i64,
    /// The partition's watermark when read: the events are past it.
    pub watermark: i64,
    /// `(seq, event)`, oldest first.
    pub events: Vec<(i64, Event)>,
}

/// One job's result in a group commit: what became of each event, or why
/// the job was refused.
pub type JobResult = Result<Vec<Stored>, StoreError>;

/// A group commit inside a transaction of either backend (the scheduler
/// commits its events under its lease check, in the same transaction).
pub(super) trait GroupCommit {
    /// Resolves each job against what is stored and the jobs before it,
    /// then writes the accepted events and their audit entries.
    async fn commit_groups(&mut self, jobs: &[IngestJob]) -> Result<Vec<JobResult>, StoreError>;
}

macro_rules! group_commit_for {
    ($db:ty) => {
        impl GroupCommit for Transaction<'_, $db> {
            async fn commit_groups(
                &mut self,
                jobs: &[IngestJob],
            ) -> Result<Vec<JobResult>, StoreError> {
                // Event inserts are serialised (the audit chain's lock), so
                // events commit in sequence order and an evaluation
                // watermark never passes an event still to commit.
                self.lock_chain().await?;

                // What is stored already under the keys and ids of the group.
                let keys: Vec<&str> = jobs
                    .iter()
                    .flat_map(|j| j.events.iter().filter_map(|e| e.idempotency_key.as_deref()))
                    .collect();
                let ids: Vec<&str> = jobs
                    .iter()
                    .flat_map(|j| {
                        j.events
                            .iter()
                            .filter(|e| !e.generated_id)
                            .map(|e| e.event.id.as_str())
                    })
                    .collect();
                let mut by_key: HashMap<String, Existing> = HashMap::new();
                let mut by_id: HashMap<String, Existing> = HashMap::new();
                for (column, values) in [(Column::IdempotencyKey, &keys), (Column::Id, &ids)] {
                    for (id, seq, body_digest, key) in self.existing_events(column, values).await? {
                        let existing = Existing {
                            id: id.clone(),
                            seq,
                            body_digest,
                        };
                        if let Some(key) = key {
                            by_key.insert(key, existing.clone());
                        }
                        by_id.insert(id, existing);
                    }
                }

                // Resolve each job against the store and the jobs before it.
                let mut rows: Vec<EventRow<'_>> = Vec::new();
                let mut plans = Vec::with_capacity(jobs.len());
                for job in jobs {
                    plans.push(plan_job(job, &mut by_key, &mut by_id, &mut rows));
                }

                // Write the accepted rows, then their audit entries in order.
                let mut seqs: HashMap<String, i64> = HashMap::with_capacity(rows.len());
                seqs.extend(self.insert_event_rows(&rows).await?);
                let audits: Vec<&AuditEntry> = rows.iter().map(|(_, audit, _)| *audit).collect();
                self.append_audit_refs(&audits).await?;
                Ok(answers(plans, &rows, &seqs))
            }
        }
    };
}

group_commit_for!(Postgres);
group_commit_for!(Sqlite);

/// Each job's answer once its rows are written with sequence numbers
/// `seqs` (by event id).
fn answers(plans: Vec<Plan>, rows: &[EventRow<'_>], seqs: &HashMap<String, i64>) -> Vec<JobResult> {
    plans
        .into_iter()
        .map(|plan| match plan {
            Plan::Refused(error) => Err(error),
            Plan::Accepted(slots) => slots
                .into_iter()
                .map(|slot| match slot {
                    Slot::Duplicate { first_event, seq } => {
                        // Seq 0: the first is in this group.
                        let seq = if seq == 0 {
                            seqs.get(&first_event).copied().unwrap_or(0)
                        } else {
                            seq
                        };
                        Ok(Stored::Duplicate { first_event, seq })
                    }
                    Slot::Insert(index) => {
                        let id = &rows[index].0.event.id;
                        seqs.get(id)
                            .map(|seq| Stored::New { seq: *seq })
                            .ok_or_else(|| StoreError::Corrupt {
                                what: "event insert",
                                reason: format!("no sequence number returned for `{id}`"),
                            })
                    }
                })
                .collect(),
        })
        .collect()
}

/// What a job resolved to before anything is written.
enum Plan {
    /// Refused; nothing of it is written.
    Refused(StoreError),
    /// Per event: a duplicate (answered from the first), or a row to write.
    Accepted(Vec<Slot>),
}

enum Slot {
    Duplicate { first_event: String, seq: i64 },
    Insert(usize),
}

impl Store {
    /// Stores one request's events in one transaction, each with its audit
    /// entry from `audit_for`. An event whose idempotency key (or id) was
    /// seen with the same body is a duplicate and writes nothing; with a
    /// different body the whole batch fails and nothing is written.
    pub async fn insert_events(
        &self,
        events: &[NewEvent],
        audit_for: impl Fn(&NewEvent) -> AuditEntry,
    ) -> Result<Vec<Stored>, StoreError> {
        let job = IngestJob {
            events: events.to_vec(),
            audits: events.iter().map(audit_for).collect(),
        };
        let mut results = self.insert_event_groups(&[job]).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Database(sqlx::Error::RowNotFound)))
    }

    /// Stores several requests' events in one transaction (group commit).
    /// The outer error is a database failure that wrote nothing; otherwise
    /// each job has its own result: stored, or refused (an idempotency key
    /// or event id reused with another body) with nothing of it written.
    #[tracing::instrument(name = "vigil.store.insert_events", level = "debug", skip_all,
        fields(jobs = jobs.len(), events = jobs.iter().map(|j| j.events.len()).sum::<usize>()))]
    pub async fn insert_event_groups(
        &self,
        jobs: &[IngestJob],
    ) -> Result<Vec<JobResult>, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let results = tx.commit_groups(jobs).await?;
            tx.commit().await?;
            Ok(results)
        })
    }

    /// The next events of partition `part` to evaluate, oldest first, if
    /// `host` holds the partition's lease: the lease's term and watermark
    /// (what the evaluation's commit is fenced on) and up to `limit` events
    /// past the watermark. `None` when `host` does not hold the partition.
    pub async fn claim_partition_events(
        &self,
        host: &str,
        part: i32,
        limit: i64,
    ) -> Result<Option<PartitionBatch>, StoreError> {
        let lease: Option<(i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT term, evaluated_seq FROM partitions WHERE part = $1 AND owner = $2")
                .bind(part)
                .bind(host)
                .fetch_optional(pool)
                .await?
        });
        let Some((term, watermark)) = lease else {
            return Ok(None);
        };
        let rows: Vec<(i64, String, String, String, i64, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT seq, id, account_id, kind, occurred_at, payload FROM events
                 WHERE part = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(part)
            .bind(watermark)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let events = rows
            .into_iter()
            .map(|(seq, id, account_id, kind, occurred_at, payload)| {
                (
                    seq,
                    Event {
                        id,
                        account_id,
                        kind,
                        occurred_at,
                        payload,
                    },
                )
            })
            .collect();
        Ok(Some(PartitionBatch {
            part,
            term,
            watermark,
            events,
        }))
    }

    /// How many committed events are not evaluated yet (the backlog, over
    /// every partition).
    pub async fn unevaluated_count(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM events e JOIN partitions p ON p.part = e.part
                 WHERE e.seq > p.evaluated_seq",
            )
            .fetch_one(pool)
            .await?
        }))
    }

    /// How many of the events `seqs` are not evaluated yet.
    pub async fn count_unevaluated(&self, seqs: &[i64]) -> Result<usize, StoreError> {
        let mut pending = 0;
        for chunk in seqs.chunks(CHUNK) {
            let count: i64 = with_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT COUNT(*) FROM events e JOIN partitions p ON p.part = e.part
                     WHERE e.seq > p.evaluated_seq AND e.seq IN (",
                );
                let mut list = query.separated(", ");
                for seq in chunk {
                    list.push_bind(*seq);
                }
                query.push(")");
                query.build_query_scalar().fetch_one(pool).await?
            });
            pending += usize::try_from(count).unwrap_or(0);
        }
        Ok(pending)
    }
}

/// Resolves one job: duplicates answered from the first event, conflicts
/// refuse the whole job, new events are appended to `rows` (and to the
/// key/id maps, so a later job in the group sees them).
fn plan_job<'j>(
    job: &'j IngestJob,
    by_key: &mut HashMap<String, Existing>,
    by_id: &mut HashMap<String, Existing>,
    rows: &mut Vec<EventRow<'j>>,
) -> Plan {
    let mut slots = Vec::with_capacity(job.events.len());
    let mut added: Vec<(Option<String>, String)> = Vec::new();
    let mut pending: Vec<EventRow<'j>> = Vec::new();
    // Takes back what this job had claimed in the maps.
    fn refuse(
        error: StoreError,
        added: &[(Option<String>, String)],
        by_key: &mut HashMap<String, Existing>,
        by_id: &mut HashMap<String, Existing>,
    ) -> Plan {
        for (key, id) in added {
            if let Some(key) = key {
                by_key.remove(key);
            }
            by_id.remove(id);
        }
        Plan::Refused(error)
    }
    for (new, audit) in job.events.iter().zip(&job.audits) {
        // An event with neither a key nor a client's id can never be sent
        // again as the same event: nothing to compare its body with later.
        let body_digest = if new.generated_id && new.idempotency_key.is_none() {
            String::new()
        } else {
            digest(&new.body)
        };
        if let Some(key) = &new.idempotency_key
            && let Some(existing) = by_key.get(key)
        {
            if existing.body_digest != body_digest {
                let error = StoreError::IdempotencyConflict {
                    key: key.clone(),
                    first_event: existing.id.clone(),
                };
                return refuse(error, &added, by_key, by_id);
            }
            slots.push(Slot::Duplicate {
                first_event: existing.id.clone(),
                seq: existing.seq,
            });
            continue;
        }
        if let Some(existing) = by_id.get(&new.event.id) {
            if existing.body_digest != body_digest {
                let error = StoreError::EventIdConflict(new.event.id.clone());
                return refuse(error, &added, by_key, by_id);
            }
            slots.push(Slot::Duplicate {
                first_event: existing.id.clone(),
                seq: existing.seq,
            });
            continue;
        }
        // New: claimed in the maps with seq 0 until written (a duplicate
        // within the group is answered after the write, below).
        let existing = Existing {
            id: new.event.id.clone(),
            seq: 0,
            body_digest: body_digest.clone(),
        };
        if let Some(key) = &new.idempotency_key {
            by_key.insert(key.clone(), existing.clone());
        }
        by_id.insert(new.event.id.clone(), existing);
        added.push((new.idempotency_key.clone(), new.event.id.clone()));
        slots.push(Slot::Insert(rows.len() + pending.len()));
        pending.push((new, audit, body_digest));
    }
    rows.extend(pending);
    Plan::Accepted(slots)
}
