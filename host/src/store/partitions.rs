//! Coordination between hosts sharing one store, through the store alone:
//!
//! - **Evaluation partitions.** An account's events all fall in one of
//!   [`PARTITIONS`] partitions. A host evaluates a partition only while it
//!   holds the partition's lease; taking a lease over bumps its term. Each
//!   partition keeps a watermark (`evaluated_seq`): its events up to there
//!   are evaluated. An evaluation commits only if the partition's owner,
//!   term and watermark are still what the evaluator read (a fenced
//!   compare-and-set), so an event is evaluated once even when a host is
//!   killed or paused mid-batch and another takes its partitions.
//! - **The leader lease**, with the same term fencing, for time-based work.
//! - **The host roster**: live hosts (recent heartbeat) share the
//!   partitions evenly.
//!
//! Leases are taken with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so hosts
//! racing for free partitions do not queue behind each other; SQLite has
//! one writer and needs no locking clause.

use serde_json::json;
use sqlx::{Postgres, Sqlite, Transaction};

use super::events::GroupCommit;
use super::{AuditEntry, IngestJob, NewEvent, Store, StoreError, Stored};
use crate::runtime::bindings::types::Event;

/// The kind of the events the scheduler's tick writes.
pub const TICK_KIND: &str = "schedule.tick";

/// Whether `host` holds the leader lease with `term` and it has not run
/// out at `now`.
const LEADER_HOLDS: &str =
    "SELECT term FROM leader_lease WHERE id = 1 AND owner = $1 AND term = $2 AND lease_until > $3";

/// The leader's fence on its writes.
trait LeaderFence {
    /// Checks, inside a transaction, that `host` still holds the leader
    /// lease with `term` and that it has not run out at `now`; on
    /// PostgreSQL the row then stays locked until the transaction ends, so
    /// no takeover can slip in before the commit. Taken last, just before
    /// the commit (see [`POSTGRES_LEADER_FENCE`]).
    async fn fence_leader(&mut self, host: &str, term: i64, now: i64) -> Result<bool, StoreError>;
}

/// The fence on PostgreSQL. The lock would also keep every other host from
/// taking the lead for as long as a leader paused inside the transaction
/// (SIGSTOP, a VM frozen) keeps its connection, since the other hosts skip
/// a locked lease row rather than wait on it. So the same statement bounds
/// how long the transaction may sit idle, from then on, to what is left of
/// the lease: at least [`FENCE_IDLE_FLOOR_MS`], at most the pool's own
/// bound ([`super::IDLE_IN_TRANSACTION_MS`]). Past it the server ends the
/// session and rolls the transaction back, and the lease, run out, can be
/// taken over. The fence is the last statement but one, so a leader that
/// is not paused is never idle that long after it.
const POSTGRES_LEADER_FENCE: &str = "SELECT term, set_config('idle_in_transaction_session_timeout', \
     LEAST(GREATEST(lease_until - $3, $4), $5)::text, true) \
     FROM leader_lease WHERE id = 1 AND owner = $1 AND term = $2 AND lease_until > $3 FOR UPDATE";

/// The least idle time a fenced transaction is allowed, in milliseconds,
/// however little is left of the lease.
pub(super) const FENCE_IDLE_FLOOR_MS: i64 = 1_000;

impl LeaderFence for Transaction<'_, Postgres> {
    async fn fence_leader(&mut self, host: &str, term: i64, now: i64) -> Result<bool, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(POSTGRES_LEADER_FENCE)
            .bind(host)
            .bind(term)
            .bind(now)
            .bind(FENCE_IDLE_FLOOR_MS)
            .bind(super::IDLE_IN_TRANSACTION_MS)
            .fetch_optional(&mut **self)
            .await?;
        Ok(row.is_some())
    }
}

/// SQLite has one writer at a time and no other host to fence off.
impl LeaderFence for Transaction<'_, Sqlite> {
    async fn fence_leader(&mut self, host: &str, term: i64, now: i64) -> Result<bool, StoreError> {
        let row: Option<i64> = sqlx::query_scalar(LEADER_HOLDS)
            .bind(host)
            .bind(term)
            .bind(now)
            .fetch_optional(&mut **self)
            .await?;
        Ok(row.is_some())
    }
}

/// What a scheduler run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickRun {
    /// `host` is not the leader with that term (any more): nothing written.
    NotLeader,
    /// The period's tick was written before: nothing to do.
    AlreadyDone,
    /// The tick was written: one event per account, this many new.
    Ticked(usize),
}

/// How many evaluation partitions there are. Changing it would move
/// accounts between partitions, so it is fixed.
pub const PARTITIONS: i32 = 16;

/// The partition of an account: FNV-1a of its id, modulo [`PARTITIONS`].
/// Stable across hosts, versions and platforms.
pub fn partition_of(account_id: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in account_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % PARTITIONS as u32) as i32
}

/// A partition lease this host holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLease {
    /// The partition.
    pub part: i32,
    /// The lease's term: it fences this host's commits.
    pub term: i64,
}

impl Store {
    /// Announces `host` as live (at `now`), adding it to the roster.
    pub async fn heartbeat(&self, host: &str, now: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO hosts (id, started_at, seen_at) VALUES ($1, $2, $2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            )
            .bind(host)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Removes `host` from the roster (it is stopping).
    pub async fn leave(&self, host: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM hosts WHERE id = $1").bind(host).execute(pool).await?;
        });
        Ok(())
    }

    /// How many hosts were seen since `since`.
    pub async fn live_hosts(&self, since: i64) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM hosts WHERE seen_at >= $1")
                .bind(since)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Extends the leases of the `held` partitions to `until` where `host`
    /// still holds them; the leases it still holds (a lease taken over by
    /// another host is not). Partitions given back are not renewed.
    pub async fn renew_partitions(
        &self,
        host: &str,
        held: &[i32],
        until: i64,
    ) -> Result<Vec<PartitionLease>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = held.iter().map(i32::to_string).collect();
        let sql = format!(
            "UPDATE partitions SET lease_until = $2 WHERE owner = $1 AND part IN ({})
             RETURNING part, term",
            list.join(", ")
        );
        let rows: Vec<(i32, i64)> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(host).bind(until).fetch_all(pool).await?
        });
        Ok(leases(rows))
    }

    /// Takes up to `max` partitions, other than the `held` ones, whose
    /// lease has run out (at `now`) or that `host` held before (a host
    /// restarted under the same id takes its partitions back at once), each
    /// with a new term, leased to `host` until `until`.
    pub async fn acquire_partitions(
        &self,
        host: &str,
        held: &[i32],
        now: i64,
        until: i64,
        max: i64,
    ) -> Result<Vec<PartitionLease>, StoreError> {
        if max <= 0 {
            return Ok(Vec::new());
        }
        // Partitions are small integers: listed inline.
        let keep = if held.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = held.iter().map(i32::to_string).collect();
            format!(" AND part NOT IN ({})", list.join(", "))
        };
        let sql = |lock: &str| {
            format!(
                "UPDATE partitions SET owner = $1, term = term + 1, lease_until = $3
                 WHERE part IN (SELECT part FROM partitions
                                WHERE (lease_until <= $2 OR owner = $1){keep}
                                ORDER BY part LIMIT $4{lock})
                 RETURNING part, term"
            )
        };
        let sql = sql(self.skip_locked());
        let rows: Vec<(i32, i64)> = with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(host)
                .bind(now)
                .bind(until)
                .bind(max)
                .fetch_all(pool)
                .await?
        });
        Ok(leases(rows))
    }

    /// Gives up `host`'s leases on `parts` at once, so another host can
    /// take them without waiting for them to run out.
    pub async fn release_partitions(&self, host: &str, parts: &[i32]) -> Result<(), StoreError> {
        for part in parts {
            with_pool!(self, pool => {
                sqlx::query("UPDATE partitions SET lease_until = 0 WHERE part = $1 AND owner = $2")
                    .bind(part)
                    .bind(host)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(())
    }

    /// Every partition: `(part, owner, term, lease_until, evaluated_seq)`.
    pub async fn partitions(&self) -> Result<Vec<(i32, String, i64, i64, i64)>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT part, owner, term, lease_until, evaluated_seq FROM partitions ORDER BY part",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Takes or renews the leader lease for `host` until `until`: it is
    /// `host`'s when `host` holds it or it has run out (at `now`). A lease
    /// that ran out gets a new term, so whatever the host started under the
    /// old term is fenced off. The term, when `host` is the leader.
    pub async fn acquire_leadership(
        &self,
        host: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<i64>, StoreError> {
        // The row is skipped while a leader's fenced write holds it: never
        // wait on a leader that may be paused mid-transaction; try again
        // next round.
        let sql = |lock: &str| {
            format!(
                "UPDATE leader_lease
                 SET term = CASE WHEN owner = $1 AND lease_until > $2 THEN term ELSE term + 1 END,
                     owner = $1, lease_until = $3
                 WHERE id = (SELECT id FROM leader_lease
                             WHERE id = 1 AND (owner = $1 OR lease_until <= $2){lock})
                 RETURNING term"
            )
        };
        let sql = sql(self.skip_locked());
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(&sql)
                .bind(host)
                .bind(now)
                .bind(until)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Gives the leader lease up if `host` holds it.
    pub async fn resign_leadership(&self, host: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE leader_lease SET lease_until = 0 WHERE id = 1 AND owner = $1")
                .bind(host)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The leader lease: `(owner, term, lease_until)`.
    pub async fn leader(&self) -> Result<(String, i64, i64), StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as("SELECT owner, term, lease_until FROM leader_lease WHERE id = 1")
                .fetch_one(pool)
                .await?
        }))
    }
}

impl Store {
    /// The scheduler's tick for `period`, run by the leader `host` under
    /// `term`: one `schedule.tick` event per account (so time-based rules,
    /// such as an approaching renewal, are evaluated for accounts that sent
    /// nothing), each with its audit entry, and the period marked done —
    /// in one transaction that checks the lease before the commit (locking
    /// it until then), so a leader that lost its lease (paused,
    /// partitioned) writes nothing. A host that is not the leader is told
    /// so before it does any work.
    pub async fn run_tick(
        &self,
        host: &str,
        term: i64,
        period: i64,
        now: i64,
    ) -> Result<TickRun, StoreError> {
        with_pool!(self, pool => {
            // A host that is not the leader does no work; the fence that
            // counts is taken just before the commit, below.
            let leads: Option<i64> = sqlx::query_scalar(LEADER_HOLDS)
                .bind(host)
                .bind(term)
                .bind(now)
                .fetch_optional(pool)
                .await?;
            if leads.is_none() {
                return Ok(TickRun::NotLeader);
            }
            let mut tx = pool.begin().await?;
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT period FROM schedule_runs WHERE job = 'tick' AND period = $1",
            )
            .bind(period)
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_some() {
                return Ok(TickRun::AlreadyDone);
            }
            let accounts: Vec<String> = sqlx::query_scalar("SELECT id FROM accounts ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
            let payload = json!({"period": period}).to_string();
            let events: Vec<NewEvent> = accounts
                .iter()
                .map(|account| {
                    let event = Event {
                        id: format!("tick-{period}-{account}"),
                        account_id: account.clone(),
                        kind: TICK_KIND.into(),
                        occurred_at: now,
                        payload: payload.clone(),
                    };
                    // The same body for every host, so a tick written twice
                    // for one period is one event.
                    let body = format!("{TICK_KIND}\u{0}{}\u{0}{period}", event.id);
                    NewEvent { event, idempotency_key: None, body, generated_id: false }
                })
                .collect();
            let audits = events
                .iter()
                .map(|new| AuditEntry {
                    at: now,
                    actor: format!("host:{host}"),
                    action: "event.ingest".into(),
                    resource: format!("event:{}", new.event.id),
                    origin: format!("scheduler:term-{term}"),
                    success: true,
                    details: json!({"account_id": new.event.account_id, "kind": TICK_KIND}),
                })
                .collect();
            let results = tx.commit_groups(&[IngestJob { events, audits }]).await?;
            let mut written = 0;
            for result in results {
                written += result?.iter().filter(|s| matches!(s, Stored::New { .. })).count();
            }
            // The fence last: the work above, which grows with the
            // accounts, is done before the lease row is locked and the
            // transaction's idle time bounded by the lease.
            if !tx.fence_leader(host, term, now).await? {
                return Ok(TickRun::NotLeader);
            }
            sqlx::query(
                "INSERT INTO schedule_runs (job, period, host, term, finished_at) VALUES ('tick', $1, $2, $3, $4)",
            )
            .bind(period)
            .bind(host)
            .bind(term)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(TickRun::Ticked(written))
        })
    }
}

fn leases(rows: Vec<(i32, i64)>) -> Vec<PartitionLease> {
    let mut leases: Vec<PartitionLease> = rows
        .into_iter()
        .map(|(part, term)| PartitionLease { part, term })
        .collect();
    leases.sort_by_key(|l| l.part);
    leases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_always_falls_in_the_same_partition_and_accounts_spread_over_all() {
        assert_eq!(partition_of("acme"), partition_of("acme"));
        // FNV-1a of "a" is 0xe40c292c; pinned so a change of hash, which
        // would move stored accounts, fails here.
        assert_eq!(partition_of("a"), (0xe40c_292c_u32 % 16) as i32);
        let mut seen = [0usize; PARTITIONS as usize];
        for n in 0..1600 {
            seen[partition_of(&format!("acct-{n}")) as usize] += 1;
        }
        assert!(seen.iter().all(|&count| count > 50), "{seen:?}");
    }
}
