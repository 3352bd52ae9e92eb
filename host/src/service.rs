//! The host's background work behind the API, in four tasks:
//!
//! - the **committer** groups the events of concurrent requests into one
//!   transaction (group commit) and answers each request once it is
//!   committed, on a thread of its own;
//! - the **evaluator** runs committed events through the pipeline, one
//!   partition batch at a time in sequence order, for the partitions this
//!   host holds, and commits what each batch leaves (scores, intents,
//!   cooldowns, audit entries) with the partition's new watermark, fenced
//!   on its lease — so after a crash, events acknowledged but not
//!   evaluated are picked up (by this host on restart or by another), and
//!   none is evaluated twice;
//! - the **coordinator** keeps this host in the roster, holds its fair
//!   share of the partitions (renewing, taking over those whose host died,
//!   giving some back when hosts join), and, while this host holds the
//!   leader lease, runs the scheduler's tick;
//! - the **dispatcher** claims pending intents and carries them out
//!   through their connector, recording each delivery.
//!
//! [`Service::shutdown`] stops taking events, commits what is queued,
//! evaluates what is committed, delivers what is pending, and gives its
//! leases back so other hosts take over at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::connectors::{Attempt, Connectors};
use crate::history::PayloadNumbers;
use crate::metrics::Metrics;
use crate::names::{channel_name, intent_kind_name, level_name, severity_name, timing_name};
use crate::pipeline::{AccountState, Disposition, EVALUATION_CHUNK, Evaluation, Pipeline};
use crate::runtime::InvocationRecord;
use crate::runtime::bindings::types::{Account, Event, IntentKind};
use crate::store::{
    AuditEntry, EvaluationFence, EvaluationWrite, IngestJob, IntentRecord, IntentState, JobResult,
    LatestScoreCache, NewIntent, PARTITIONS, PartitionLease, Settlement, SignalWrite, Store,
    StoreError, Stored, TickRun, now_ms, partition_of,
};

/// Events per group commit at most.
const MAX_GROUP_EVENTS: usize = 20_000;

/// Events per evaluation batch.
const EVALUATION_BATCH: i64 = 1_000;

/// Intents per delivery round.
const DELIVERY_BATCH: i64 = 200;

/// How long a dispatcher's claim on an intent lasts: a host that dies
/// mid-delivery leaves it to another after this.
const DELIVERY_CLAIM: Duration = Duration::from_secs(30);

/// How often the evaluator and dispatcher look for work nobody announced
/// (another process's writes, a failed round).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How a host takes part in a group of hosts sharing one store.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// This host's id, unique among the hosts sharing the store and stable
    /// across its restarts (it takes its own partitions back at once).
    pub host_id: String,
    /// How long a lease lasts without renewal: a host that stops renewing
    /// (killed, paused, cut off) loses its partitions and leadership after
    /// this. Renewed every fifth of it.
    pub lease_ttl: Duration,
    /// The scheduler's period: every period, the leader writes one
    /// `schedule.tick` event per account.
    pub tick_every: Duration,
    /// How intents are carried out: the log, and the webhook connectors.
    pub connectors: Connectors,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            host_id: "local".into(),
            lease_ttl: Duration::from_secs(5),
            tick_every: Duration::from_secs(24 * 60 * 60),
            connectors: Connectors::default(),
        }
    }
}

/// Receives the record of every plugin call the evaluator makes (for
/// per-version statistics and the circuit breaker).
pub trait InvocationObserver: Send + Sync + std::fmt::Debug {
    /// Called after each evaluation with its calls.
    fn observe(&self, records: &[InvocationRecord]);
}

/// What went wrong behind a request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host is shutting down and takes no more events.
    #[error("the host is shutting down")]
    ShuttingDown,
    /// The committer's thread could not be started.
    #[error("cannot start the committer thread: {0}")]
    Thread(#[from] std::io::Error),
}

struct IngestRequest {
    job: IngestJob,
    reply: oneshot::Sender<Result<Vec<Stored>, ServiceError>>,
}

/// The account states the evaluator keeps between events, with the
/// profile version (`updated_at`) each was built from.
pub type AccountStates = Arc<Mutex<HashMap<String, CachedAccount>>>;

/// An account's state, as the evaluator keeps it.
#[derive(Debug, Clone)]
pub struct CachedAccount {
    /// The profile version it was built from.
    pub profile_version: i64,
    /// The state.
    pub state: AccountState,
}

/// The partitions this host holds: partition → lease term.
type Owned = Arc<std::sync::Mutex<BTreeMap<i32, i64>>>;

/// The background tasks and what they share.
#[derive(Debug)]
pub struct Service {
    store: Store,
    config: HostConfig,
    accounts: AccountStates,
    owned: Owned,
    ingest: std::sync::Mutex<Option<mpsc::Sender<IngestRequest>>>,
    evaluate: Arc<Notify>,
    deliver: Arc<Notify>,
    evaluated: watch::Receiver<u64>,
    stop_evaluator: watch::Sender<bool>,
    stop_dispatcher: watch::Sender<bool>,
    stop_coordinator: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    scores: Arc<LatestScoreCache>,
    score_listener: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for IngestRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestRequest")
            .field("events", &self.job.events.len())
            .finish()
    }
}

impl Service {
    /// Joins the hosts sharing `store` (taking this host's share of the
    /// partitions before it returns, so events are evaluated from the
    /// start) and starts the tasks on the current tokio runtime.
    pub async fn start(
        store: Store,
        pipeline: Arc<Pipeline>,
        metrics: Arc<Metrics>,
        observer: Arc<dyn InvocationObserver>,
        config: HostConfig,
    ) -> Result<Self, ServiceError> {
        let accounts: AccountStates = Arc::default();
        let owned: Owned = Arc::default();
        let scores = LatestScoreCache::new();
        let score_listener = scores.listen(&store);
        let (ingest_tx, ingest_rx) = mpsc::channel(1024);
        let evaluate = Arc::new(Notify::new());
        let deliver = Arc::new(Notify::new());
        let (evaluated_tx, evaluated) = watch::channel(0u64);
        let (stop_evaluator, evaluator_stop) = watch::channel(false);
        let (stop_dispatcher, dispatcher_stop) = watch::channel(false);
        let (stop_coordinator, coordinator_stop) = watch::channel(false);
        let coordinator = Coordinator {
            store: store.clone(),
            config: config.clone(),
            accounts: accounts.clone(),
            owned: owned.clone(),
            wake_evaluator: evaluate.clone(),
            leader_term: None,
        };
        let mut coordinator = coordinator;
        coordinator.round().await?;
        let committer = spawn_committer(
            store.with_own_connections(1),
            ingest_rx,
            evaluate.clone(),
            metrics.clone(),
        )?;
        let evaluator = tokio::spawn(run_evaluator(Evaluator {
            store: store.clone(),
            host: config.host_id.clone(),
            pipeline,
            accounts: accounts.clone(),
            owned: owned.clone(),
            metrics: metrics.clone(),
            observer,
            wake: evaluate.clone(),
            deliver: deliver.clone(),
            evaluated: evaluated_tx,
            stop: evaluator_stop,
            scores: scores.clone(),
        }));
        let dispatcher = tokio::spawn(run_dispatcher(
            store.clone(),
            config.host_id.clone(),
            Arc::new(config.connectors.clone()),
            deliver.clone(),
            metrics,
            dispatcher_stop,
        ));
        let coordinator = tokio::spawn(coordinator.run(coordinator_stop));
        Ok(Self {
            store,
            config,
            accounts,
            owned,
            ingest: std::sync::Mutex::new(Some(ingest_tx)),
            evaluate,
            deliver,
            evaluated,
            stop_evaluator,
            stop_dispatcher,
            stop_coordinator,
            tasks: std::sync::Mutex::new(vec![committer, evaluator, dispatcher, coordinator]),
            scores,
            score_listener: std::sync::Mutex::new(score_listener),
        })
    }

    /// The latest scores read since the score history last changed
    /// (PostgreSQL; see [`LatestScoreCache`]).
    pub fn scores(&self) -> &Arc<LatestScoreCache> {
        &self.scores
    }

    /// This host's id.
    pub fn host_id(&self) -> &str {
        &self.config.host_id
    }

    /// The partitions this host holds now.
    pub fn owned_partitions(&self) -> Vec<i32> {
        self.owned
            .lock()
            .map(|owned| owned.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Commits one request's events (grouped with other requests'); the
    /// answer comes after the commit.
    pub async fn ingest(&self, job: IngestJob) -> Result<Vec<Stored>, ServiceError> {
        let sender = self
            .ingest
            .lock()
            .ok()
            .and_then(|sender| sender.clone())
            .ok_or(ServiceError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(IngestRequest { job, reply })
            .await
            .map_err(|_| ServiceError::ShuttingDown)?;
        answer.await.map_err(|_| ServiceError::ShuttingDown)?
    }

    /// Waits until the events `seqs` are evaluated (by any host), up to
    /// `timeout`; whether they are.
    pub async fn wait_evaluated(
        &self,
        seqs: &[i64],
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let mut changes = self.evaluated.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if self.store.count_unevaluated(seqs).await? == 0 {
                return Ok(true);
            }
            self.evaluate.notify_one();
            // Another host may be the one evaluating: look again at least
            // every 50 ms.
            let next = (tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
            match tokio::time::timeout_at(next, changes.changed()).await {
                Ok(Ok(())) | Err(_) if tokio::time::Instant::now() < deadline => {}
                _ => return Ok(self.store.count_unevaluated(seqs).await? == 0),
            }
        }
    }

    /// The account's state as this host's evaluator keeps it, when this
    /// host evaluates the account (holds its partition) and has it.
    pub async fn account_state(&self, account_id: &str) -> Option<AccountState> {
        let part = partition_of(account_id);
        let owned = self
            .owned
            .lock()
            .map(|owned| owned.contains_key(&part))
            .unwrap_or(false);
        if !owned {
            return None;
        }
        let accounts = self.accounts.lock().await;
        accounts.get(account_id).map(|cached| cached.state.clone())
    }

    /// Forgets an account's state, so the next evaluation rebuilds it from
    /// the store (after its profile changed).
    pub async fn forget(&self, account_id: &str) {
        self.accounts.lock().await.remove(account_id);
    }

    /// Wakes the dispatcher (a new intent was stored).
    pub fn deliver_now(&self) {
        self.deliver.notify_one();
    }

    /// Stops taking events, commits the queued ones, evaluates everything
    /// committed in this host's partitions, delivers what is pending, gives
    /// the leases back, and stops the tasks.
    pub async fn shutdown(&self) {
        // Dropping the sender ends the committer once the queue is drained.
        if let Ok(mut sender) = self.ingest.lock() {
            sender.take();
        }
        if let Some(listener) = self.score_listener.lock().ok().and_then(|mut l| l.take()) {
            listener.abort();
        }
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut tasks| tasks.drain(..).collect())
            .unwrap_or_default();
        // In order: the committer drains the queue, the evaluator evaluates
        // what was committed, the dispatcher delivers what was planned, the
        // coordinator gives the leases back.
        let stops = [
            None,
            Some(&self.stop_evaluator),
            Some(&self.stop_dispatcher),
            Some(&self.stop_coordinator),
        ];
        for (task, stop) in tasks.into_iter().zip(stops) {
            if let Some(stop) = stop {
                let _ = stop.send(true);
            }
            let _ = task.await;
        }
    }
}

/// Keeps this host's place among the hosts sharing the store.
struct Coordinator {
    store: Store,
    config: HostConfig,
    accounts: AccountStates,
    owned: Owned,
    wake_evaluator: Arc<Notify>,
    /// The leader lease's term while this host leads.
    leader_term: Option<i64>,
}

impl Coordinator {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let every = self.config.lease_ttl / 5;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            if let Err(error) = self.round().await {
                tracing::warn!(%error, "coordination round failed; retrying");
            }
        }
        // Leaving: give everything back so other hosts take over at once.
        let parts: Vec<i32> = self
            .owned
            .lock()
            .map(|mut owned| std::mem::take(&mut *owned).into_keys().collect())
            .unwrap_or_default();
        let host = &self.config.host_id;
        let left = async {
            self.store.release_partitions(host, &parts).await?;
            self.store.resign_leadership(host).await?;
            self.store.leave(host).await
        };
        if let Err(error) = left.await {
            tracing::warn!(%error, "could not give the leases back; they run out on their own");
        }
    }

    /// One round: heartbeat, renew, rebalance, lead.
    #[tracing::instrument(name = "vigil.hosts.coordinate", level = "debug", skip_all,
        fields(host = %self.config.host_id))]
    async fn round(&mut self) -> Result<(), StoreError> {
        let host = self.config.host_id.clone();
        let ttl = i64::try_from(self.config.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        self.store.heartbeat(&host, now).await?;

        // Renew; whatever was not renewed was taken over.
        let holding_now: Vec<i32> = self
            .owned
            .lock()
            .map(|owned| owned.keys().copied().collect())
            .unwrap_or_default();
        let renewed = self
            .store
            .renew_partitions(&host, &holding_now, now + ttl)
            .await?;
        let held: BTreeMap<i32, i64> = renewed.iter().map(|l| (l.part, l.term)).collect();
        let lost: Vec<i32> = self.replace_owned(&held);
        if !lost.is_empty() {
            tracing::info!(?lost, "partitions taken over by another host");
            self.forget_partitions(&lost).await;
        }

        // The live hosts share the partitions evenly.
        let live = self.store.live_hosts(now - ttl).await?.max(1);
        let share = (i64::from(PARTITIONS) + live - 1) / live;
        let holding = i64::try_from(held.len()).unwrap_or(0);
        if holding < share {
            let held_parts: Vec<i32> = held.keys().copied().collect();
            let acquired = self
                .store
                .acquire_partitions(&host, &held_parts, now, now + ttl, share - holding)
                .await?;
            if !acquired.is_empty() {
                let parts: Vec<i32> = acquired.iter().map(|l| l.part).collect();
                tracing::info!(?parts, "partitions acquired");
                // Another host may have evaluated them meanwhile.
                self.forget_partitions(&parts).await;
                self.add_owned(&acquired);
                self.wake_evaluator.notify_one();
            }
        } else if holding > share {
            let extra: Vec<i32> = held
                .keys()
                .rev()
                .take(usize::try_from(holding - share).unwrap_or(0))
                .copied()
                .collect();
            tracing::info!(
                ?extra,
                live,
                "giving partitions back to the hosts that joined"
            );
            if let Ok(mut owned) = self.owned.lock() {
                for part in &extra {
                    owned.remove(part);
                }
            }
            self.store.release_partitions(&host, &extra).await?;
            self.forget_partitions(&extra).await;
        }

        // Lead, if the lease is free or ours.
        let term = self.store.acquire_leadership(&host, now, now + ttl).await?;
        if term != self.leader_term {
            match term {
                Some(term) => tracing::info!(term, "leading the scheduler"),
                None if self.leader_term.is_some() => tracing::info!("no longer the leader"),
                None => {}
            }
            self.leader_term = term;
        }
        if let Some(term) = term {
            // The time now, not the round's start: the tick is fenced on
            // the lease still running at this moment.
            self.tick(term, now_ms()).await?;
        }
        Ok(())
    }

    /// The scheduler's work for the current period.
    async fn tick(&self, term: i64, now: i64) -> Result<(), StoreError> {
        let every = i64::try_from(self.config.tick_every.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let period = now / every;
        match self
            .store
            .run_tick(&self.config.host_id, term, period, now)
            .await?
        {
            TickRun::Ticked(events) => {
                tracing::info!(period, events, "scheduler tick written");
                self.wake_evaluator.notify_one();
            }
            TickRun::NotLeader => tracing::info!(term, "lost the leader lease; tick not written"),
            TickRun::AlreadyDone => {}
        }
        Ok(())
    }

    /// Makes the held set `held` (renewed terms); the partitions lost.
    fn replace_owned(&self, held: &BTreeMap<i32, i64>) -> Vec<i32> {
        let Ok(mut owned) = self.owned.lock() else {
            return Vec::new();
        };
        let lost = owned
            .keys()
            .filter(|part| !held.contains_key(part))
            .copied()
            .collect();
        *owned = held.clone();
        lost
    }

    fn add_owned(&self, leases: &[PartitionLease]) {
        if let Ok(mut owned) = self.owned.lock() {
            for lease in leases {
                owned.insert(lease.part, lease.term);
            }
        }
    }

    async fn forget_partitions(&self, parts: &[i32]) {
        self.accounts
            .lock()
            .await
            .retain(|id, _| !parts.contains(&partition_of(id)));
    }
}

/// Starts the committer on a thread and runtime of its own, with its own
/// connection; the task returned ends when it has drained the closed
/// queue.
///
/// The committer is the one serialized stream ingest goes through, and a
/// group commit is several round trips. On the shared runtime the answer
/// to each waited for a worker to come free of request handling (parsing
/// and checking batches): about 2 ms a round trip under load, measured.
/// On its own runtime the operating system wakes it when the database
/// answers. (Two committers taking turns at the chain's lock were tried
/// too: the groups got smaller and ingest slower.)
fn spawn_committer(
    store: Store,
    requests: mpsc::Receiver<IngestRequest>,
    evaluate: Arc<Notify>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("vigil-committer".into())
        .spawn(move || {
            runtime.block_on(run_committer(store, requests, evaluate, metrics));
            let _ = done.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = finished.await;
    }))
}

/// Takes whatever queued (at least one request, at most
/// [`MAX_GROUP_EVENTS`] events) and commits it as one group, until the
/// queue is closed and drained.
async fn run_committer(
    store: Store,
    mut requests: mpsc::Receiver<IngestRequest>,
    evaluate: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = requests.recv().await {
        // Whatever queued while the last group committed goes in this one.
        let mut events = first.job.events.len();
        let mut group = vec![first];
        while events < MAX_GROUP_EVENTS {
            match requests.try_recv() {
                Ok(next) => {
                    events += next.job.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        commit_group(&store, group, &evaluate, &metrics).await;
    }
}

/// Commits `group` and answers each of its requests.
async fn commit_group(
    store: &Store,
    group: Vec<IngestRequest>,
    evaluate: &Notify,
    metrics: &Metrics,
) {
    let events: usize = group.iter().map(|r| r.job.events.len()).sum();
    let (jobs, replies): (Vec<IngestJob>, Vec<_>) =
        group.into_iter().map(|r| (r.job, r.reply)).unzip();
    let span = tracing::debug_span!("vigil.ingest.commit", requests = jobs.len(), events);
    let results = store.insert_event_groups(&jobs).instrument(span).await;
    let results: Vec<JobResult> = match results {
        Ok(results) => results,
        Err(error) => {
            // The group failed as a whole (a lost race with another host
            // on a unique key, a dropped connection): each request on its
            // own, so one bad request cannot fail the others.
            tracing::warn!(%error, "group commit failed; committing requests one by one");
            let mut one_by_one = Vec::with_capacity(jobs.len());
            for job in &jobs {
                one_by_one.push(
                    match store.insert_event_groups(std::slice::from_ref(job)).await {
                        Ok(mut result) => result.pop().unwrap_or_else(|| {
                            Err(StoreError::Corrupt {
                                what: "group commit",
                                reason: "no result".into(),
                            })
                        }),
                        Err(error) => Err(error),
                    },
                );
            }
            one_by_one
        }
    };
    let mut stored = 0u64;
    for (reply, result) in replies.into_iter().zip(results) {
        if let Ok(outcomes) = &result {
            stored += outcomes
                .iter()
                .filter(|s| matches!(s, Stored::New { .. }))
                .count() as u64;
        }
        let _ = reply.send(result.map_err(ServiceError::from));
    }
    if stored > 0 {
        metrics.events_ingested(stored);
        evaluate.notify_one();
    }
}

struct Evaluator {
    store: Store,
    host: String,
    pipeline: Arc<Pipeline>,
    accounts: AccountStates,
    owned: Owned,
    metrics: Arc<Metrics>,
    observer: Arc<dyn InvocationObserver>,
    wake: Arc<Notify>,
    deliver: Arc<Notify>,
    evaluated: watch::Sender<u64>,
    stop: watch::Receiver<bool>,
    scores: Arc<LatestScoreCache>,
}

async fn run_evaluator(evaluator: Evaluator) {
    // Where the next round starts, so no partition waits behind the others.
    let mut start = 0usize;
    loop {
        let stopping = *evaluator.stop.borrow();
        // Evaluate until nothing committed is left in the held partitions.
        loop {
            let parts: Vec<i32> = evaluator
                .owned
                .lock()
                .map(|owned| owned.keys().copied().collect())
                .unwrap_or_default();
            if parts.is_empty() {
                break;
            }
            let mut evaluated = 0;
            let mut failed = false;
            for offset in 0..parts.len() {
                let part = parts[(start + offset) % parts.len()];
                match evaluate_batch(&evaluator, part).await {
                    Ok(count) => evaluated += count,
                    Err(error) => {
                        tracing::error!(%error, part, "evaluation failed; retrying on the next sweep");
                        failed = true;
                    }
                }
            }
            start = start.wrapping_add(1);
            if evaluated > 0 {
                evaluator.evaluated.send_modify(|n| *n += 1);
                evaluator.deliver.notify_one();
            }
            if evaluated == 0 || failed {
                break;
            }
        }
        if stopping {
            return;
        }
        let mut stop = evaluator.stop.clone();
        tokio::select! {
            _ = evaluator.wake.notified() => {}
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Evaluates the next committed events of partition `part`, if this host
/// holds it; how many.
#[tracing::instrument(name = "vigil.pipeline.batch", level = "debug", skip(evaluator),
    fields(events = tracing::field::Empty))]
async fn evaluate_batch(evaluator: &Evaluator, part: i32) -> Result<usize, StoreError> {
    let Some(batch) = evaluator
        .store
        .claim_partition_events(&evaluator.host, part, EVALUATION_BATCH)
        .await?
    else {
        return Ok(0);
    };
    let Some(through) = batch.events.last().map(|(seq, _)| *seq) else {
        return Ok(0);
    };
    tracing::Span::current().record("events", batch.events.len());
    let mut accounts = evaluator.accounts.clone().lock_owned().await;
    let ids: Vec<&str> = batch
        .events
        .iter()
        .map(|(_, e)| e.account_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // A profile changed through any host since a state was built makes the
    // state stale: rebuild it.
    let versions = evaluator.store.account_versions(&ids).await?;
    for id in ids {
        let version = versions.get(id).copied().unwrap_or(0);
        let fresh = accounts
            .get(id)
            .is_some_and(|cached| cached.profile_version == version);
        if !fresh {
            let state = rebuild(&evaluator.store, id).await?;
            accounts.insert(
                id.to_string(),
                CachedAccount {
                    profile_version: version,
                    state,
                },
            );
        }
    }
    let pipeline = evaluator.pipeline.clone();
    let metrics = evaluator.metrics.clone();
    let observer = evaluator.observer.clone();
    let count = batch.events.len();
    let events = batch.events;
    // The plugins run on a blocking thread: CPU work off the async runtime.
    let (accounts, writes) = tokio::task::spawn_blocking(move || {
        let mut accounts = accounts;
        let events: Vec<Event> = events.into_iter().map(|(_, event)| event).collect();
        let mut writes: Vec<Option<EvaluationWrite>> = events.iter().map(|_| None).collect();
        // Waves: every account's first event of the batch, then every
        // account's second, and so on; each account's events stay in
        // order. A wave goes to the pipeline a chunk at a time (one call
        // per plugin and stage), each chunk's evaluations turned into
        // writes before the next is evaluated, so that the memory they
        // took is reused while it is still in the cache (the bench runs
        // the pipeline the same way: BENCHMARKS.md, "What was made
        // faster", 2026-12-07 17:15).
        for chunk in waves_by_account(&events)
            .iter()
            .flat_map(|wave| wave.chunks(EVALUATION_CHUNK))
        {
            let mut taken: Vec<(usize, String, CachedAccount)> = chunk
                .iter()
                .filter_map(|&at| {
                    let event = events.get(at)?;
                    let (id, cached) = accounts.remove_entry(&event.account_id)?;
                    Some((at, id, cached))
                })
                .collect();
            let mut batch: Vec<(&mut AccountState, &Event)> = taken
                .iter_mut()
                .filter_map(|(at, _, cached)| Some((&mut cached.state, events.get(*at)?)))
                .collect();
            let results = pipeline.process_batch(&mut batch);
            drop(batch);
            let evaluated_at = now_ms();
            for ((at, id, cached), result) in taken.into_iter().zip(results) {
                if let (Some(event), Some(slot)) = (events.get(at), writes.get_mut(at)) {
                    let state = &cached.state;
                    *slot = Some(match result {
                        Ok(evaluation) => {
                            metrics.pipeline_run(&evaluation.invocations);
                            observer.observe(&evaluation.invocations);
                            evaluation_write(event, state, evaluation, evaluated_at)
                        }
                        // An event the pipeline cannot take (its payload is
                        // checked at ingest, so this is rare) is evaluated
                        // with an audit entry saying why, rather than
                        // retried for ever.
                        Err(error) => EvaluationWrite {
                            event_id: event.id.clone(),
                            account_id: event.account_id.clone(),
                            audits: vec![AuditEntry {
                                at: evaluated_at,
                                actor: "host".into(),
                                action: "event.evaluate".into(),
                                resource: format!("event:{}", event.id),
                                origin: "pipeline".into(),
                                success: false,
                                details: json!({"error": error.to_string()}),
                            }],
                            cooldowns: state.cooldowns().map(|(k, u)| (k.to_string(), u)).collect(),
                            evaluated_at,
                            ..EvaluationWrite::default()
                        },
                    });
                }
                accounts.insert(id, cached);
            }
        }
        // In the events' order, as they were committed.
        let writes: Vec<EvaluationWrite> = writes.into_iter().flatten().collect();
        (accounts, writes)
    })
    .await
    .map_err(|e| StoreError::Corrupt {
        what: "evaluation",
        reason: format!("the evaluation thread failed: {e}"),
    })?;
    let mut accounts = accounts;
    let fence = EvaluationFence {
        host: evaluator.host.clone(),
        part,
        term: batch.term,
        watermark: batch.watermark,
        through,
    };
    // Read-your-writes on this host: the scored accounts bypass the cache
    // from before the commit until they are dropped from it after, not
    // left to the notification.
    let scored: BTreeSet<&str> = writes
        .iter()
        .filter(|write| !write.scores.is_empty())
        .map(|write| write.account_id.as_str())
        .collect();
    let writing_scores = evaluator
        .scores
        .writing(scored.into_iter().map(str::to_string).collect());
    let recorded = evaluator.store.record_evaluations(&fence, &writes).await;
    drop(writing_scores);
    match recorded {
        Ok(_) => Ok(count),
        Err(error) => {
            // Nothing was committed: the states ran ahead of the store, so
            // forget them; the events are evaluated again from the store's
            // view (here, or by the host that took the partition over).
            accounts.retain(|id, _| partition_of(id) != part);
            if let StoreError::LeaseLost { .. } = error {
                tracing::info!(
                    part,
                    "partition lost mid-batch; its evaluation was discarded"
                );
                if let Ok(mut owned) = evaluator.owned.lock() {
                    owned.remove(&part);
                }
                return Ok(0);
            }
            Err(error)
        }
    }
}

/// The positions of `events` in waves: the first wave holds each account's
/// first event, the second each account's second, and so on.
fn waves_by_account(events: &[Event]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (at, event) in events.iter().enumerate() {
        let count = seen.entry(event.account_id.as_str()).or_insert(0);
        match waves.get_mut(*count) {
            Some(wave) => wave.push(at),
            None => waves.push(vec![at]),
        }
        *count += 1;
    }
    waves
}

/// What one evaluation leaves in the store.
fn evaluation_write(
    event: &Event,
    state: &AccountState,
    evaluation: Evaluation,
    evaluated_at: i64,
) -> EvaluationWrite {
    let mut audits = Vec::new();
    for record in &evaluation.invocations {
        if record.outcome.is_fault() {
            audits.push(AuditEntry {
                at: evaluated_at,
                actor: format!("plugin:{}@{}", record.plugin.name, record.plugin.version),
                action: "plugin.trap".into(),
                resource: format!("plugin:{}@{}", record.plugin.name, record.plugin.version),
                origin: format!("event:{}", event.id),
                success: false,
                details: json!({
                    "call": record.call,
                    "outcome": record.outcome.to_string(),
                    "digest": record.plugin.digest,
                    "fuel_used": record.fuel_used,
                }),
            });
        }
    }
    for signal in &evaluation.signals {
        if let Disposition::Acted { policy_tags } = &signal.disposition {
            audits.push(AuditEntry {
                at: evaluated_at,
                actor: format!("plugin:{}@{}", signal.plugin.name, signal.plugin.version),
                action: "signal.acted".into(),
                resource: format!("account:{}", event.account_id),
                origin: format!("event:{}", event.id),
                success: true,
                details: json!({
                    "signal": signal.signal.name,
                    "dedup_key": signal.signal.dedup_key,
                    "policy_tags": policy_tags,
                }),
            });
        }
    }
    let signals = evaluation
        .signals
        .iter()
        .map(|record| SignalWrite {
            source: format!("plugin:{}@{}", record.plugin.name, record.plugin.version),
            name: record.signal.name.to_string(),
            severity: severity_name(record.signal.severity).to_string(),
            reason: record.signal.reason.to_string(),
            dedup_key: record.signal.dedup_key.to_string(),
            disposition: serde_json::to_value(&record.disposition).unwrap_or_default(),
        })
        .collect();
    let intents = evaluation
        .intents
        .into_iter()
        .map(|planned| NewIntent {
            id: format!(
                "{}/{}/{}",
                event.account_id, planned.plugin.name, planned.intent.idempotency_key
            ),
            account_id: event.account_id.clone(),
            event_id: Some(event.id.clone()),
            source: format!("plugin:{}@{}", planned.plugin.name, planned.plugin.version),
            plugin_digest: Some(planned.plugin.digest.to_string()),
            signal: planned.signal.into_string(),
            kind: intent_kind_name(&planned.intent.kind).to_string(),
            timing: timing_name(planned.intent.timing).to_string(),
            body: intent_body(&planned.intent.kind),
            planned_at: evaluation.now,
        })
        .collect();
    EvaluationWrite {
        event_id: event.id.clone(),
        account_id: event.account_id.clone(),
        scores: evaluation.scores,
        intents,
        cooldowns: state.cooldowns().map(|(k, u)| (k.to_string(), u)).collect(),
        signals,
        audits,
        evaluated_at,
    }
}

/// An intent's details as the API shows them (kebab-case field names).
pub fn intent_body(kind: &IntentKind) -> serde_json::Value {
    match kind {
        IntentKind::Notify(n) => json!({
            "channel": channel_name(n.channel),
            "recipient": n.recipient,
            "template": n.template,
            "summary": n.summary,
        }),
        IntentKind::Task(t) => {
            json!({"title": t.title, "assignee": t.assignee, "due_at": t.due_at})
        }
        IntentKind::Escalate(e) => json!({
            "level": level_name(e.level),
            "reason": e.reason,
            "due_at": e.due_at,
        }),
        IntentKind::Schedule(s) => json!({"what": s.what, "at": s.at}),
        IntentKind::Webhook(w) => json!({"connector": w.connector, "body": w.body}),
        IntentKind::Freeze(f) => json!({"reason": f.reason}),
    }
}

/// An account's state rebuilt from the store: its profile, what its
/// evaluated events recorded, its latest scores, cooldowns and planned
/// intent keys. Plugins are not run again.
pub async fn rebuild(store: &Store, account_id: &str) -> Result<AccountState, StoreError> {
    let profile: Account = store
        .account(account_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "account",
            reason: format!("events refer to unknown account `{account_id}`"),
        })?;
    let mut state = AccountState::new(profile);
    for event in store.evaluated_events_for(account_id).await? {
        if let Ok(payload) = PayloadNumbers::parse(&event.payload) {
            state.record_event(&event.kind, event.occurred_at, &payload);
        }
    }
    for (name, at, value) in store.fresh_scores_for(account_id).await? {
        state.history.record(&name, at, value);
    }
    for score in store.latest_scores_for(account_id).await? {
        state.scores.insert(score.card.name.to_string(), score);
    }
    state.restore(
        store.cooldowns_for(account_id).await?,
        store.intent_keys_for(account_id).await?,
    );
    Ok(state)
}

async fn run_dispatcher(
    store: Store,
    host: String,
    connectors: Arc<Connectors>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = *stop.borrow();
        loop {
            match deliver_round(&store, &host, &connectors, &metrics).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "delivering intents failed; retrying on the next sweep");
                    break;
                }
            }
        }
        if stopping {
            return;
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims pending intents, carries them out (concurrently: one slow
/// webhook does not hold the others), records the results; how many were
/// claimed.
#[tracing::instrument(name = "vigil.outbox.deliver", level = "debug", skip_all,
    fields(intents = tracing::field::Empty))]
async fn deliver_round(
    store: &Store,
    host: &str,
    connectors: &Arc<Connectors>,
    metrics: &Metrics,
) -> Result<usize, StoreError> {
    let now = now_ms();
    let claim = i64::try_from(DELIVERY_CLAIM.as_millis()).unwrap_or(i64::MAX);
    let claimed = store
        .claim_intents(host, now, now + claim, DELIVERY_BATCH)
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    tracing::Span::current().record("intents", claimed.len());
    let count = claimed.len();
    let mut attempts = tokio::task::JoinSet::new();
    for (index, intent) in claimed.into_iter().enumerate() {
        let connectors = connectors.clone();
        attempts.spawn(async move {
            let attempt = connectors.deliver(&intent).await;
            (index, intent, attempt)
        });
    }
    let mut results = Vec::with_capacity(count);
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            // A delivery task that panicked leaves its intent claimed; the
            // claim runs out and it is tried again.
            Err(error) => tracing::error!(%error, "a delivery task failed"),
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    let settlements: Vec<Settlement> = results
        .into_iter()
        .map(|(_, intent, attempt)| settlement(host, &intent, attempt))
        .collect();
    let states: Vec<(IntentState, bool)> = settlements
        .iter()
        .map(|s| (s.state, s.retry_at.is_some()))
        .collect();
    let moved = store.settle_intents(host, settlements).await?;
    for ((state, retry), moved) in states.into_iter().zip(moved) {
        if moved {
            metrics.delivery(if retry { "retry" } else { state.as_str() });
        }
    }
    Ok(count)
}

/// How an attempt is recorded: the intent's new state and its audit entry.
fn settlement(host: &str, intent: &IntentRecord, attempt: Attempt) -> Settlement {
    let at = now_ms();
    let (state, action, connector, error, retry_at) = match attempt {
        Attempt::Delivered { connector } => (
            IntentState::Delivered,
            "intent.delivered",
            connector,
            None,
            None,
        ),
        Attempt::Retry { reason, after } => (
            IntentState::Pending,
            "intent.retry",
            "webhook".to_string(),
            Some(reason),
            Some(at + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2)),
        ),
        Attempt::Failed { reason } => (
            IntentState::Failed,
            "intent.failed",
            "none".to_string(),
            Some(reason),
            None,
        ),
    };
    Settlement {
        seq: intent.seq,
        state,
        retry_at,
        audit: AuditEntry {
            at,
            actor: format!("host:{host}"),
            action: action.into(),
            resource: format!("intent:{}", intent.intent.id),
            origin: "dispatcher".into(),
            success: state == IntentState::Delivered,
            details: json!({
                "connector": connector,
                "error": error,
                "kind": intent.intent.kind,
                "attempt": intent.attempts + 1,
                "retry_at": retry_at,
            }),
        },
        error,
    }
}
