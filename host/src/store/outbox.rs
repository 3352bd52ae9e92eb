//! What evaluations leave behind: score history and latest scores,
//! cooldowns, and the intent outbox with its delivery state. An
//! evaluation's writes, its audit entries and the event's "evaluated" mark
//! commit together, so a restarted host neither loses nor repeats them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use super::audit::AppendAudit;
use super::{AuditEntry, Store, StoreError};
use crate::pipeline::ScoreState;

/// A score to write: the account, the event it was computed for (none
/// for a score recorded outside an evaluation), the score.
type ScoreRowRef<'a> = (&'a str, Option<&'a str>, &'a ScoreState);

/// A latest score being chosen: computed at, seq, value, band, stale.
type LatestScore = (i64, i64, f64, String, bool);

/// Rows per multi-row statement (under both backends' bind limits).
const CHUNK: usize = 400;

/// Where an intent is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntentState {
    /// Planned, not carried out yet.
    Pending,
    /// Carried out by its connector.
    Delivered,
    /// Its connector refused it; not retried.
    Failed,
}

impl IntentState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentState::Pending => "pending",
            IntentState::Delivered => "delivered",
            IntentState::Failed => "failed",
        }
    }

    /// Every state, in the order an intent goes through them.
    pub const ALL: [IntentState; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    /// The state called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An intent to put in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewIntent {
    /// Unique: `account/plugin/idempotency-key`; a second intent with the
    /// same id is not stored again.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// The event whose evaluation planned it (none for API requests).
    pub event_id: Option<String>,
    /// `plugin@version`, or `key:<id>` for an intervention requested
    /// through the API.
    pub source: String,
    /// The planning plugin's digest.
    pub plugin_digest: Option<String>,
    /// The signal it answers (or `intervention`).
    pub signal: String,
    /// `notify`, `task`, `escalate`, `schedule`, `webhook` or `freeze`.
    pub kind: String,
    /// `immediate`, `short-term`, `medium-term` or `long-term`.
    pub timing: String,
    /// The intent's details, JSON.
    pub body: serde_json::Value,
    /// When it was planned (evaluation time).
    pub planned_at: i64,
}

/// An intent as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentRecord {
    /// Its position in the outbox.
    pub seq: i64,
    /// The intent.
    #[serde(flatten)]
    pub intent: NewIntent,
    /// Where it is in its delivery.
    pub state: IntentState,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Which intents to list.
#[derive(Debug, Clone, Default)]
pub struct IntentFilter {
    /// Only this account's.
    pub account_id: Option<String>,
    /// Only those in this state.
    pub state: Option<IntentState>,
    /// Only those of this kind.
    pub kind: Option<String>,
}

/// Everything one event's evaluation writes.
#[derive(Debug, Clone, Default)]
pub struct EvaluationWrite {
    /// The event (marked evaluated).
    pub event_id: String,
    /// The account.
    pub account_id: String,
    /// Scores computed (or kept, stale).
    pub scores: Vec<ScoreState>,
    /// Intents planned.
    pub intents: Vec<NewIntent>,
    /// The account's cooldowns after the evaluation (`plugin/key`, until).
    pub cooldowns: Vec<(String, i64)>,
    /// Signals raised and what became of them.
    pub signals: Vec<SignalWrite>,
    /// Audit entries: plugin faults, signals acted on.
    pub audits: Vec<AuditEntry>,
    /// When (wall clock).
    pub evaluated_at: i64,
}

/// What an evaluation's commit is fenced on: the partition lease it was
/// read under, and the watermark it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationFence {
    /// The evaluating host.
    pub host: String,
    /// The partition.
    pub part: i32,
    /// The lease's term when the events were read.
    pub term: i64,
    /// The watermark when the events were read.
    pub watermark: i64,
    /// The new watermark: the last event evaluated.
    pub through: i64,
}

/// A signal and its disposition, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalWrite {
    /// `plugin@version` of the trigger or playbook.
    pub source: String,
    /// The signal's name.
    pub name: String,
    /// `info` … `critical`.
    pub severity: String,
    /// Why it was raised.
    pub reason: String,
    /// Its dedup key.
    pub dedup_key: String,
    /// What became of it: `{"disposition": "acted", …}`.
    pub disposition: serde_json::Value,
}

/// A recorded signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalRecord {
    /// The event whose evaluation raised it.
    pub event_id: String,
    /// The account.
    pub account_id: String,
    /// The signal.
    #[serde(flatten)]
    pub signal: SignalWrite,
    /// When it was evaluated (wall clock).
    pub evaluated_at: i64,
}

type IntentRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i32,
    i64,
    Option<i64>,
    Option<String>,
);

const INTENT_COLUMNS: &str = "seq, id, account_id, event_id, source, plugin_digest, signal, kind, timing, body, state, attempts, planned_at, delivered_at, last_error";

fn intent_record(row: IntentRow) -> Result<IntentRecord, StoreError> {
    let (
        seq,
        id,
        account_id,
        event_id,
        source,
        plugin_digest,
        signal,
        kind,
        timing,
        body,
        state,
        attempts,
        planned_at,
        delivered_at,
        last_error,
    ) = row;
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "intent",
        reason: format!("outbox entry {seq}: {reason}"),
    };
    Ok(IntentRecord {
        seq,
        intent: NewIntent {
            id,
            account_id,
            event_id,
            source,
            plugin_digest,
            signal,
            kind,
            timing,
            body: serde_json::from_str(&body).map_err(|e| corrupt(e.to_string()))?,
            planned_at,
        },
        state: IntentState::parse(&state).ok_or_else(|| corrupt(format!("state `{state}`")))?,
        attempts,
        delivered_at,
        last_error,
    })
}

/// Multi-row writes inside a transaction of either backend. An
/// evaluation writes a handful of rows, and one statement per row made the
/// evaluator round-trip bound, so every writer takes a batch.
pub(super) trait WriteOutbox {
    /// Appends scores to the history and makes the newest of each
    /// (account, name) the latest unless a newer one is there.
    async fn write_scores(&mut self, scores: &[ScoreRowRef<'_>]) -> Result<(), StoreError>;

    /// Stores intents whose id is not stored yet; the ids it stored.
    async fn write_intents(
        &mut self,
        intents: &[&NewIntent],
    ) -> Result<HashSet<String>, StoreError>;
}

macro_rules! write_outbox_for {
    ($db:ty) => {
        impl WriteOutbox for Transaction<'_, $db> {
            async fn write_scores(
                &mut self,
                scores: &[ScoreRowRef<'_>],
            ) -> Result<(), StoreError> {
                let scores: Vec<(&str, Option<&str>, &ScoreState, String)> = scores
                    .iter()
                    .map(|(account, event, score)| {
                        serde_json::to_string(&score.card)
                            .map(|card| (*account, *event, *score, card))
                            .map_err(|e| StoreError::Corrupt {
                                what: "score card",
                                reason: e.to_string(),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                // Scores, then the newest of each (account, name) as latest.
                let mut latest: HashMap<(String, String), LatestScore> = HashMap::new();
                for chunk in scores.chunks(CHUNK) {
                    let mut query = QueryBuilder::new(
                        "INSERT INTO scores (account_id, name, value, band, card, plugin_name, plugin_version, plugin_digest, computed_at, stale, event_id) ",
                    );
                    query.push_values(chunk, |mut row, (account, event, score, card)| {
                        row.push_bind(*account)
                            .push_bind(score.card.name.as_str())
                            .push_bind(score.card.value)
                            .push_bind(score.card.band.as_str())
                            .push_bind(card)
                            .push_bind(&*score.plugin.name)
                            .push_bind(&*score.plugin.version)
                            .push_bind(&*score.plugin.digest)
                            .push_bind(score.computed_at)
                            .push_bind(score.stale)
                            .push_bind(*event);
                    });
                    query.push(" RETURNING seq, account_id, name, value, band, computed_at, stale");
                    let rows: Vec<(i64, String, String, f64, String, i64, bool)> =
                        query.build_query_as().fetch_all(&mut **self).await?;
                    for (seq, account, name, value, band, computed_at, stale) in rows {
                        let entry = latest
                            .entry((account, name))
                            .or_insert((computed_at, seq, value, band.clone(), stale));
                        if (computed_at, seq) > (entry.0, entry.1) {
                            *entry = (computed_at, seq, value, band, stale);
                        }
                    }
                }
                let latest: Vec<_> = latest.into_iter().collect();
                for chunk in latest.chunks(CHUNK) {
                    let mut query = QueryBuilder::new(
                        "INSERT INTO latest_scores (account_id, name, value, band, score_seq, computed_at, stale) ",
                    );
                    query.push_values(chunk, |mut row, ((account, name), (computed_at, seq, value, band, stale))| {
                        row.push_bind(account)
                            .push_bind(name)
                            .push_bind(*value)
                            .push_bind(band)
                            .push_bind(*seq)
                            .push_bind(*computed_at)
                            .push_bind(*stale);
                    });
                    query.push(
                        " ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value, band = excluded.band,
                          score_seq = excluded.score_seq, computed_at = excluded.computed_at, stale = excluded.stale
                          WHERE latest_scores.computed_at <= excluded.computed_at",
                    );
                    query.build().execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn write_intents(
                &mut self,
                intents: &[&NewIntent],
            ) -> Result<HashSet<String>, StoreError> {
                // Intents: those not stored before get an `intent.planned` entry.
                let mut stored: HashSet<String> = HashSet::new();
                for chunk in intents.chunks(CHUNK) {
                    let mut query = QueryBuilder::new(
                        "INSERT INTO intents (id, account_id, event_id, source, plugin_digest, signal, kind, timing, body, state, planned_at) ",
                    );
                    query.push_values(chunk, |mut row, intent| {
                        row.push_bind(&intent.id)
                            .push_bind(&intent.account_id)
                            .push_bind(&intent.event_id)
                            .push_bind(&intent.source)
                            .push_bind(&intent.plugin_digest)
                            .push_bind(&intent.signal)
                            .push_bind(&intent.kind)
                            .push_bind(&intent.timing)
                            .push_bind(intent.body.to_string())
                            .push_bind("pending")
                            .push_bind(intent.planned_at);
                    });
                    query.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                    let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut **self).await?;
                    stored.extend(rows.into_iter().map(|(id,)| id));
                }
                Ok(stored)
            }
        }
    };
}

write_outbox_for!(Postgres);
write_outbox_for!(Sqlite);

/// The fence of an evaluations' commit: moves the partition's watermark
/// if `fence`'s host still holds the partition under its term and the
/// watermark has not moved; the rows it updated (1, or 0 when the lease
/// was lost). The updated row stays locked until the commit, so a host
/// taking the partition over reads the new watermark.
trait PartitionFence {
    async fn move_watermark(
        &mut self,
        fence: &EvaluationFence,
        now: i64,
    ) -> Result<u64, StoreError>;
}

/// Another host skips a locked partition row rather than wait on it, so
/// on PostgreSQL the fence also bounds how long its transaction may sit
/// idle, from then on, to what is left of the lease at `now` (at least
/// [`super::partitions::FENCE_IDLE_FLOOR_MS`], at most the pool's
/// [`super::IDLE_IN_TRANSACTION_MS`]): a host paused between two of the
/// commit's statements is ended by the server then, and the partition,
/// its lease run out, can be taken over. (A pause in the middle of a
/// `COPY` is not idle time to the server, and is not bounded so.)
impl PartitionFence for Transaction<'_, Postgres> {
    async fn move_watermark(
        &mut self,
        fence: &EvaluationFence,
        now: i64,
    ) -> Result<u64, StoreError> {
        let bounded: Vec<(String,)> = sqlx::query_as(
            "UPDATE partitions SET evaluated_seq = $1
             WHERE part = $2 AND owner = $3 AND term = $4 AND evaluated_seq = $5
             RETURNING set_config('idle_in_transaction_session_timeout',
                                  LEAST(GREATEST(lease_until - $6, $7), $8)::text, true)",
        )
        .bind(fence.through)
        .bind(fence.part)
        .bind(&fence.host)
        .bind(fence.term)
        .bind(fence.watermark)
        .bind(now)
        .bind(super::partitions::FENCE_IDLE_FLOOR_MS)
        .bind(super::IDLE_IN_TRANSACTION_MS)
        .fetch_all(&mut **self)
        .await?;
        Ok(u64::try_from(bounded.len()).unwrap_or(u64::MAX))
    }
}

/// SQLite has one writer at a time and no other host to fence off.
impl PartitionFence for Transaction<'_, Sqlite> {
    async fn move_watermark(
        &mut self,
        fence: &EvaluationFence,
        _now: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE partitions SET evaluated_seq = $1
             WHERE part = $2 AND owner = $3 AND term = $4 AND evaluated_seq = $5",
        )
        .bind(fence.through)
        .bind(fence.part)
        .bind(&fence.host)
        .bind(fence.term)
        .bind(fence.watermark)
        .execute(&mut **self)
        .await?
        .rows_affected())
    }
}

impl Store {
    /// Appends a score to the account's history (and the latest scores).
    pub async fn record_score(
        &self,
        account_id: &str,
        score: &ScoreState,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            tx.write_scores(&[(account_id, None, score)]).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Commits evaluations of one partition's events: scores, intents
    /// (each with an `intent.planned` audit entry), cooldowns, the
    /// evaluations' own audit entries, and the partition's new watermark,
    /// all in one transaction — only if the partition's lease is still
    /// `fence`'s (same owner and term) and its watermark has not moved;
    /// otherwise nothing is written and the error is
    /// [`StoreError::LeaseLost`]. Returns how many intents were new.
    #[tracing::instrument(name = "vigil.store.record_evaluations", level = "debug", skip_all,
        fields(part = fence.part, count = writes.len()))]
    pub async fn record_evaluations(
        &self,
        fence: &EvaluationFence,
        writes: &[EvaluationWrite],
    ) -> Result<usize, StoreError> {
        let scores: Vec<ScoreRowRef<'_>> = writes
            .iter()
            .flat_map(|w| {
                w.scores
                    .iter()
                    .map(move |score| (w.account_id.as_str(), Some(w.event_id.as_str()), score))
            })
            .collect();
        let intents: Vec<(&EvaluationWrite, &NewIntent)> = writes
            .iter()
            .flat_map(|w| w.intents.iter().map(move |intent| (w, intent)))
            .collect();
        let signals: Vec<(&EvaluationWrite, &SignalWrite)> = writes
            .iter()
            .flat_map(|w| w.signals.iter().map(move |signal| (w, signal)))
            .collect();
        // The cooldowns an account has after its last evaluation here.
        let mut cooldowns: HashMap<&str, &[(String, i64)]> = HashMap::new();
        for write in writes {
            cooldowns.insert(&write.account_id, &write.cooldowns);
        }
        let accounts: Vec<&str> = cooldowns.keys().copied().collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;

            // First the fence: it also locks the partition's row until the
            // commit.
            let fenced = tx.move_watermark(fence, super::now_ms()).await?;
            if fenced != 1 {
                return Err(StoreError::LeaseLost { part: fence.part });
            }

            tx.write_scores(&scores).await?;
            // Intents not stored before get an `intent.planned` entry.
            let mut stored = tx
                .write_intents(&intents.iter().map(|(_, intent)| *intent).collect::<Vec<_>>())
                .await?;

            // Cooldowns: each account's set after its last evaluation.
            for chunk in accounts.chunks(CHUNK) {
                let mut query = QueryBuilder::new("DELETE FROM cooldowns WHERE account_id IN (");
                let mut list = query.separated(", ");
                for account in chunk {
                    list.push_bind(*account);
                }
                query.push(")");
                query.build().execute(&mut *tx).await?;
            }
            let rows: Vec<(&str, &String, i64)> = cooldowns
                .iter()
                .flat_map(|(account, keys)| keys.iter().map(move |(key, until)| (*account, key, *until)))
                .collect();
            for chunk in rows.chunks(CHUNK) {
                let mut query = QueryBuilder::new("INSERT INTO cooldowns (account_id, key, until) ");
                query.push_values(chunk, |mut row, (account, key, until)| {
                    row.push_bind(*account).push_bind(*key).push_bind(*until);
                });
                query.build().execute(&mut *tx).await?;
            }

            for chunk in signals.chunks(CHUNK) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO signals (event_id, account_id, source, name, severity, reason, dedup_key, disposition, evaluated_at) ",
                );
                query.push_values(chunk, |mut row, (write, signal)| {
                    row.push_bind(&write.event_id)
                        .push_bind(&write.account_id)
                        .push_bind(&signal.source)
                        .push_bind(&signal.name)
                        .push_bind(&signal.severity)
                        .push_bind(&signal.reason)
                        .push_bind(&signal.dedup_key)
                        .push_bind(signal.disposition.to_string())
                        .push_bind(write.evaluated_at);
                });
                query.build().execute(&mut *tx).await?;
            }

            // The evaluations' entries, then the new intents', in order.
            let mut audits: Vec<AuditEntry> =
                writes.iter().flat_map(|w| w.audits.iter().cloned()).collect();
            let mut new_intents = 0;
            for (write, intent) in &intents {
                if !stored.remove(&intent.id) {
                    continue;
                }
                new_intents += 1;
                audits.push(AuditEntry {
                    at: write.evaluated_at,
                    actor: intent.source.clone(),
                    action: "intent.planned".into(),
                    resource: format!("intent:{}", intent.id),
                    origin: format!("event:{}", write.event_id),
                    success: true,
                    details: serde_json::json!({
                        "account_id": intent.account_id,
                        "kind": intent.kind,
                        "timing": intent.timing,
                        "signal": intent.signal,
                    }),
                });
            }
            tx.append_audit_many(audits).await?;
            tx.commit().await?;
            Ok(new_intents)
        })
    }

    /// The signals raised by evaluating `event_id`, in order.
    pub async fn signals_for_event(&self, event_id: &str) -> Result<Vec<SignalRecord>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
        );
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT event_id, account_id, source, name, severity, reason, dedup_key, disposition, evaluated_at
                 FROM signals WHERE event_id = $1 ORDER BY seq",
            )
            .bind(event_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(
                    event_id,
                    account_id,
                    source,
                    name,
                    severity,
                    reason,
                    dedup_key,
                    disposition,
                    evaluated_at,
                )| {
                    Ok(SignalRecord {
                        event_id,
                        account_id,
                        signal: SignalWrite {
                            source,
                            name,
                            severity,
                            reason,
                            dedup_key,
                            disposition: serde_json::from_str(&disposition).map_err(|e| {
                                StoreError::Corrupt {
                                    what: "signal",
                                    reason: e.to_string(),
                                }
                            })?,
                        },
                        evaluated_at,
                    })
                },
            )
            .collect()
    }

    /// An account's cooldowns (`plugin/key`, until).
    pub async fn cooldowns_for(&self, account_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as("SELECT key, until FROM cooldowns WHERE account_id = $1")
                .bind(account_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The keys (`plugin/key`) of intents plugins planned for an account,
    /// and when.
    pub async fn intent_keys_for(
        &self,
        account_id: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, planned_at FROM intents WHERE account_id = $1 AND event_id IS NOT NULL",
            )
            .bind(account_id)
            .fetch_all(pool)
            .await?
        });
        let prefix = format!("{account_id}/");
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| id.strip_prefix(&prefix).map(|key| (key.to_string(), at)))
            .collect())
    }

    /// Stores an intent requested outside the pipeline (an intervention),
    /// with its audit entry; `false`, writing nothing, when one with its id
    /// exists.
    pub async fn insert_intent(
        &self,
        intent: &NewIntent,
        audit: AuditEntry,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if tx.write_intents(&[intent]).await?.is_empty() {
                return Ok(false);
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Up to `limit` intents after outbox position `after`, oldest first.
    pub async fn intents(
        &self,
        filter: &IntentFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<IntentRecord>, StoreError> {
        let rows: Vec<IntentRow> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(format!("SELECT {INTENT_COLUMNS} FROM intents WHERE seq > "));
            query.push_bind(after);
            if let Some(account) = &filter.account_id {
                query.push(" AND account_id = ").push_bind(account);
            }
            if let Some(state) = filter.state {
                query.push(" AND state = ").push_bind(state.as_str());
            }
            if let Some(kind) = &filter.kind {
                query.push(" AND kind = ").push_bind(kind);
            }
            query.push(" ORDER BY seq LIMIT ").push_bind(limit);
            query.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(intent_record).collect()
    }

    /// The intent with id `id`.
    pub async fn intent_by_id(&self, id: &str) -> Result<Option<IntentRecord>, StoreError> {
        Ok(self.intents_where("id", id).await?.pop())
    }

    /// The intents planned by evaluating `event_id`, in order.
    pub async fn intents_for_event(&self, event_id: &str) -> Result<Vec<IntentRecord>, StoreError> {
        self.intents_where("event_id", event_id).await
    }

    /// Intents whose `column` (a fixed column name) equals `value`, in order.
    async fn intents_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<IntentRecord>, StoreError> {
        let sql = format!("SELECT {INTENT_COLUMNS} FROM intents WHERE {column} = $1 ORDER BY seq");
        let rows: Vec<IntentRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(value).fetch_all(pool).await?
        });
        rows.into_iter().map(intent_record).collect()
    }

    /// Claims up to `limit` pending intents for `host`'s dispatcher until
    /// `until`: those nobody holds a claim on at `now`, oldest first. A
    /// claim that runs out (its host died) lets another host deliver it.
    pub async fn claim_intents(
        &self,
        host: &str,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<IntentRecord>, StoreError> {
        let sql = |lock: &str| {
            format!(
                "UPDATE intents SET claimed_by = $1, claim_until = $3
                 WHERE seq IN (SELECT seq FROM intents
                               WHERE state = 'pending' AND (claim_until IS NULL OR claim_until <= $2)
                               ORDER BY seq LIMIT $4{lock})
                 RETURNING {INTENT_COLUMNS}"
            )
        };
        let sql = sql(self.skip_locked());
        let mut rows: Vec<IntentRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(host)
                .bind(now)
                .bind(until)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by_key(|row| row.0);
        rows.into_iter().map(intent_record).collect()
    }

    /// Records delivery attempts of intents `host` claimed: each one's new
    /// state with its audit entry, all in one transaction. Only an intent
    /// still pending and claimed by `host` moves; whether each did.
    pub async fn settle_intents(
        &self,
        host: &str,
        settlements: Vec<Settlement>,
    ) -> Result<Vec<bool>, StoreError> {
        if settlements.is_empty() {
            return Ok(Vec::new());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut moved = Vec::with_capacity(settlements.len());
            let mut audits = Vec::new();
            for settlement in settlements {
                let delivered_at =
                    (settlement.state == IntentState::Delivered).then_some(settlement.audit.at);
                // A retry stays pending, and nobody claims it before its time.
                let did = sqlx::query(
                    "UPDATE intents SET state = $1, attempts = attempts + 1, delivered_at = $2,
                         last_error = $3, claimed_by = NULL, claim_until = $6
                     WHERE seq = $4 AND state = 'pending' AND claimed_by = $5",
                )
                .bind(settlement.state.as_str())
                .bind(delivered_at)
                .bind(&settlement.error)
                .bind(settlement.seq)
                .bind(host)
                .bind(settlement.retry_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if did {
                    audits.push(settlement.audit);
                }
                moved.push(did);
            }
            tx.append_audit_many(audits).await?;
            tx.commit().await?;
            Ok(moved)
        })
    }
}

/// A delivery attempt's result, to record.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The intent's outbox position.
    pub seq: i64,
    /// `delivered` or `failed`; `pending` with `retry_at` for an attempt
    /// to repeat.
    pub state: IntentState,
    /// When to try again (the intent stays pending, unclaimed until then).
    pub retry_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The audit entry recording it.
    pub audit: AuditEntry,
}
