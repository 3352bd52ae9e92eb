//! Storing events: several requests' batches in one transaction (group
//! commit), each event with its audit entry, with idempotency checked per
//! request so one request's conflict fails that request alone.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::audit::AppendAudit;
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
    pub async fn insert_event_groups(
        &self,
        jobs: &[IngestJob],
    ) -> Result<Vec<Result<Vec<Stored>, StoreError>>, StoreError> {
        let span = tracing::debug_span!(
            "vigil.store.insert_events",
            jobs = jobs.len(),
            events = jobs.iter().map(|j| j.events.len()).sum::<usize>()
        );
        let _entered = span.enter();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;

            // What is stored already under the keys and ids of the group.
            let keys: Vec<&str> = jobs
                .iter()
                .flat_map(|j| j.events.iter().filter_map(|e| e.idempotency_key.as_deref()))
                .collect();
            let ids: Vec<&str> = jobs
                .iter()
                .flat_map(|j| j.events.iter().map(|e| e.event.id.as_str()))
                .collect();
            let mut by_key: HashMap<String, Existing> = HashMap::new();
            let mut by_id: HashMap<String, Existing> = HashMap::new();
            for (column, values) in [("idempotency_key", &keys), ("id", &ids)] {
                for chunk in values.chunks(CHUNK) {
                    let mut query = QueryBuilder::new(format!(
                        "SELECT id, seq, body_digest, idempotency_key FROM events WHERE {column} IN ("
                    ));
                    let mut list = query.separated(", ");
                    for value in chunk {
                        list.push_bind(*value);
                    }
                    query.push(")");
                    let rows: Vec<(String, i64, String, Option<String>)> =
                        query.build_query_as().fetch_all(&mut *tx).await?;
                    for (id, seq, body_digest, key) in rows {
                        let existing = Existing { id: id.clone(), seq, body_digest };
                        if let Some(key) = key {
                            by_key.insert(key, existing.clone());
                        }
                        by_id.insert(id, existing);
                    }
                }
            }

            // Resolve each job against the store and the jobs before it.
            let mut rows: Vec<(&NewEvent, &AuditEntry, String)> = Vec::new();
            let mut plans = Vec::with_capacity(jobs.len());
            for job in jobs {
                plans.push(plan_job(job, &mut by_key, &mut by_id, &mut rows));
            }

            // Write the accepted rows, then their audit entries in order.
            let mut seqs: HashMap<String, i64> = HashMap::with_capacity(rows.len());
            for chunk in rows.chunks(CHUNK) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO events (id, account_id, kind, occurred_at, payload, idempotency_key, body_digest, received_at) ",
                );
                query.push_values(chunk, |mut row, (new, audit, body_digest)| {
                    row.push_bind(&new.event.id)
                        .push_bind(&new.event.account_id)
                        .push_bind(&new.event.kind)
                        .push_bind(new.event.occurred_at)
                        .push_bind(&new.event.payload)
                        .push_bind(&new.idempotency_key)
                        .push_bind(body_digest)
                        .push_bind(audit.at);
                });
                query.push(" RETURNING id, seq");
                let inserted: Vec<(String, i64)> = query.build_query_as().fetch_all(&mut *tx).await?;
                seqs.extend(inserted);
            }
            tx.append_audit_many(rows.iter().map(|(_, audit, _)| (*audit).clone()).collect())
                .await?;
            tx.commit().await?;

            Ok(plans
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
                                seqs.get(id).map(|seq| Stored::New { seq: *seq }).ok_or_else(|| {
                                    StoreError::Corrupt {
                                        what: "event insert",
                                        reason: format!("no sequence number returned for `{id}`"),
                                    }
                                })
                            }
                        })
                        .collect(),
                })
                .collect())
        })
    }

    /// Events acknowledged but not evaluated yet, oldest first.
    pub async fn unevaluated_events(&self, limit: i64) -> Result<Vec<(i64, Event)>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT seq, id, account_id, kind, occurred_at, payload FROM events
                 WHERE evaluated_at IS NULL ORDER BY seq LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
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
            .collect())
    }

    /// How many of the events `seqs` are not evaluated yet.
    pub async fn count_unevaluated(&self, seqs: &[i64]) -> Result<usize, StoreError> {
        let mut pending = 0;
        for chunk in seqs.chunks(CHUNK) {
            let count: i64 = with_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT COUNT(*) FROM events WHERE evaluated_at IS NULL AND seq IN (",
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
    rows: &mut Vec<(&'j NewEvent, &'j AuditEntry, String)>,
) -> Plan {
    let mut slots = Vec::with_capacity(job.events.len());
    let mut added: Vec<(Option<String>, String)> = Vec::new();
    let mut pending: Vec<(&'j NewEvent, &'j AuditEntry, String)> = Vec::new();
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
        let body_digest = digest(&new.body);
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
