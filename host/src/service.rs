//! The host's background work behind the API, in three tasks:
//!
//! - the **committer** groups the events of concurrent requests into one
//!   transaction (group commit) and answers each request once it is
//!   committed;
//! - the **evaluator** runs committed events through the pipeline, in
//!   order, and commits what each evaluation leaves (scores, intents,
//!   cooldowns, audit entries) together with the event's evaluated mark —
//!   so after a crash, events acknowledged but not evaluated are picked up
//!   on start, and none is evaluated twice;
//! - the **dispatcher** carries out pending intents through their
//!   connector and records each delivery.
//!
//! [`Service::shutdown`] stops taking events, commits what is queued,
//! evaluates what is committed and delivers what is pending.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::names::{channel_name, intent_kind_name, level_name, severity_name, timing_name};
use crate::pipeline::{AccountState, Disposition, Evaluation, Pipeline};
use crate::runtime::bindings::types::{Account, Event, IntentKind};
use crate::store::{
    AuditEntry, EvaluationWrite, IngestJob, IntentFilter, IntentRecord, IntentState, NewIntent,
    SignalWrite, Store, StoreError, Stored, now_ms,
};

/// Events per group commit at most.
const MAX_GROUP_EVENTS: usize = 20_000;

/// Events per evaluation batch.
const EVALUATION_BATCH: i64 = 1_000;

/// Intents per delivery round.
const DELIVERY_BATCH: i64 = 200;

/// How often the evaluator and dispatcher look for work nobody announced
/// (another process's writes, a failed round).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What went wrong behind a request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host is shutting down and takes no more events.
    #[error("the host is shutting down")]
    ShuttingDown,
}

struct IngestRequest {
    job: IngestJob,
    reply: oneshot::Sender<Result<Vec<Stored>, ServiceError>>,
}

/// The account states the evaluator keeps between events.
pub type AccountStates = Arc<Mutex<HashMap<String, AccountState>>>;

/// The background tasks and what they share.
#[derive(Debug)]
pub struct Service {
    store: Store,
    accounts: AccountStates,
    ingest: std::sync::Mutex<Option<mpsc::Sender<IngestRequest>>>,
    evaluate: Arc<Notify>,
    deliver: Arc<Notify>,
    evaluated: watch::Receiver<u64>,
    stop_evaluator: watch::Sender<bool>,
    stop_dispatcher: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for IngestRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestRequest")
            .field("events", &self.job.events.len())
            .finish()
    }
}

impl Service {
    /// Starts the tasks on the current tokio runtime.
    pub fn start(store: Store, pipeline: Arc<Pipeline>, metrics: Arc<Metrics>) -> Self {
        let accounts: AccountStates = Arc::default();
        let (ingest_tx, ingest_rx) = mpsc::channel(1024);
        let evaluate = Arc::new(Notify::new());
        let deliver = Arc::new(Notify::new());
        let (evaluated_tx, evaluated) = watch::channel(0u64);
        let (stop_evaluator, evaluator_stop) = watch::channel(false);
        let (stop_dispatcher, dispatcher_stop) = watch::channel(false);
        let committer = tokio::spawn(run_committer(
            store.clone(),
            ingest_rx,
            evaluate.clone(),
            metrics.clone(),
        ));
        let evaluator = tokio::spawn(run_evaluator(Evaluator {
            store: store.clone(),
            pipeline,
            accounts: accounts.clone(),
            metrics: metrics.clone(),
            wake: evaluate.clone(),
            deliver: deliver.clone(),
            evaluated: evaluated_tx,
            stop: evaluator_stop,
        }));
        let dispatcher = tokio::spawn(run_dispatcher(
            store.clone(),
            deliver.clone(),
            metrics,
            dispatcher_stop,
        ));
        Self {
            store,
            accounts,
            ingest: std::sync::Mutex::new(Some(ingest_tx)),
            evaluate,
            deliver,
            evaluated,
            stop_evaluator,
            stop_dispatcher,
            tasks: std::sync::Mutex::new(vec![committer, evaluator, dispatcher]),
        }
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

    /// Waits until the events `seqs` are evaluated, up to `timeout`;
    /// whether they are.
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
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Ok(self.store.count_unevaluated(seqs).await? == 0),
            }
        }
    }

    /// The account states (for reads that need the metric history).
    pub fn accounts(&self) -> &AccountStates {
        &self.accounts
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
    /// committed, delivers what is pending, and stops the tasks.
    pub async fn shutdown(&self) {
        // Dropping the sender ends the committer once the queue is drained.
        if let Ok(mut sender) = self.ingest.lock() {
            sender.take();
        }
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut tasks| tasks.drain(..).collect())
            .unwrap_or_default();
        // In order: the committer drains the queue, the evaluator evaluates
        // what was committed, the dispatcher delivers what was planned.
        let stops = [
            None,
            Some(&self.stop_evaluator),
            Some(&self.stop_dispatcher),
        ];
        for (task, stop) in tasks.into_iter().zip(stops) {
            if let Some(stop) = stop {
                let _ = stop.send(true);
            }
            let _ = task.await;
        }
    }
}

async fn run_committer(
    store: Store,
    mut requests: mpsc::Receiver<IngestRequest>,
    evaluate: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = requests.recv().await {
        // Whatever queued while the last group committed goes in this one.
        let mut group = vec![first];
        let mut events = group[0].job.events.len();
        while events < MAX_GROUP_EVENTS {
            match requests.try_recv() {
                Ok(next) => {
                    events += next.job.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<IngestJob>, Vec<_>) =
            group.into_iter().map(|r| (r.job, r.reply)).unzip();
        let span = tracing::debug_span!("vigil.ingest.commit", requests = jobs.len(), events);
        let results = {
            let _entered = span.enter();
            store.insert_event_groups(&jobs).await
        };
        let results = match results {
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
}

struct Evaluator {
    store: Store,
    pipeline: Arc<Pipeline>,
    accounts: AccountStates,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    deliver: Arc<Notify>,
    evaluated: watch::Sender<u64>,
    stop: watch::Receiver<bool>,
}

async fn run_evaluator(evaluator: Evaluator) {
    loop {
        let stopping = *evaluator.stop.borrow();
        // Evaluate until nothing committed is left.
        loop {
            match evaluate_batch(&evaluator).await {
                Ok(0) => break,
                Ok(_) => {
                    evaluator.evaluated.send_modify(|n| *n += 1);
                    evaluator.deliver.notify_one();
                }
                Err(error) => {
                    tracing::error!(%error, "evaluation failed; retrying on the next sweep");
                    evaluator.evaluated.send_modify(|n| *n += 1);
                    break;
                }
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

/// Evaluates the oldest committed, unevaluated events; how many.
async fn evaluate_batch(evaluator: &Evaluator) -> Result<usize, StoreError> {
    let batch = evaluator.store.unevaluated_events(EVALUATION_BATCH).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let span = tracing::debug_span!("vigil.pipeline.batch", events = batch.len());
    let _entered = span.enter();
    let mut accounts = evaluator.accounts.clone().lock_owned().await;
    let ids: BTreeSet<&str> = batch.iter().map(|(_, e)| e.account_id.as_str()).collect();
    for id in ids {
        if !accounts.contains_key(id) {
            let state = rebuild(&evaluator.store, id).await?;
            accounts.insert(id.to_string(), state);
        }
    }
    let pipeline = evaluator.pipeline.clone();
    let metrics = evaluator.metrics.clone();
    let count = batch.len();
    // The plugins run on a blocking thread: CPU work off the async runtime.
    let (accounts, writes) = tokio::task::spawn_blocking(move || {
        let mut accounts = accounts;
        let mut writes = Vec::with_capacity(batch.len());
        for (_, event) in batch {
            let Some(state) = accounts.get_mut(&event.account_id) else {
                continue;
            };
            let evaluated_at = now_ms();
            let write = match pipeline.process(state, &event) {
                Ok(evaluation) => {
                    metrics.pipeline_run(&evaluation.invocations);
                    evaluation_write(&event, state, evaluation, evaluated_at)
                }
                // An event the pipeline cannot take (its payload is checked
                // at ingest, so this is rare) is marked evaluated with an
                // audit entry saying why, rather than retried for ever.
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
            };
            writes.push(write);
        }
        (accounts, writes)
    })
    .await
    .map_err(|e| StoreError::Corrupt {
        what: "evaluation",
        reason: format!("the evaluation thread failed: {e}"),
    })?;
    let mut accounts = accounts;
    if let Err(error) = evaluator.store.record_evaluations(&writes).await {
        // Nothing was committed: the states ran ahead of the store, so
        // forget them; the events are evaluated again from the store's view.
        for write in &writes {
            accounts.remove(&write.account_id);
        }
        return Err(error);
    }
    Ok(count)
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
                actor: format!("plugin:{}@{}", record.plugin, record.version),
                action: "plugin.trap".into(),
                resource: format!("plugin:{}@{}", record.plugin, record.version),
                origin: format!("event:{}", event.id),
                success: false,
                details: json!({
                    "call": record.call,
                    "outcome": record.outcome.to_string(),
                    "digest": record.digest,
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
            name: record.signal.name.clone(),
            severity: severity_name(record.signal.severity).to_string(),
            reason: record.signal.reason.clone(),
            dedup_key: record.signal.dedup_key.clone(),
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
            plugin_digest: Some(planned.plugin.digest.clone()),
            signal: planned.signal,
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
        if let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload) {
            state.record_event(&event.kind, event.occurred_at, &payload);
        }
    }
    for (name, at, value) in store.fresh_scores_for(account_id).await? {
        state.history.record(&name, at, value);
    }
    for score in store.latest_scores_for(account_id).await? {
        state.scores.insert(score.card.name.clone(), score);
    }
    state.restore(
        store.cooldowns_for(account_id).await?,
        store.intent_keys_for(account_id).await?,
    );
    Ok(state)
}

/// The connector that carries out an intent. Webhooks need a connector the
/// operator configured; none can be configured yet, so a webhook intent
/// fails with a reason. Every other kind is carried out by the built-in
/// log connector: the host logs it, and the outbox row is the record other
/// apps read (`GET /api/v1/actions`).
fn deliver(intent: &IntentRecord) -> Result<&'static str, String> {
    match intent.intent.kind.as_str() {
        "webhook" => Err(format!(
            "no webhook connector named `{}` is configured on this host",
            intent.intent.body["connector"].as_str().unwrap_or("")
        )),
        _ => {
            tracing::info!(
                target: "vigil.outbox",
                intent = %intent.intent.id,
                kind = %intent.intent.kind,
                account = %intent.intent.account_id,
                body = %intent.intent.body,
                "intent carried out"
            );
            Ok("log")
        }
    }
}

async fn run_dispatcher(
    store: Store,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = *stop.borrow();
        loop {
            match deliver_round(&store, &metrics).await {
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

async fn deliver_round(store: &Store, metrics: &Metrics) -> Result<usize, StoreError> {
    let filter = IntentFilter {
        state: Some(IntentState::Pending),
        ..IntentFilter::default()
    };
    let pending = store.intents(&filter, 0, DELIVERY_BATCH).await?;
    let span = tracing::debug_span!("vigil.outbox.deliver", intents = pending.len());
    let _entered = span.enter();
    for intent in &pending {
        let (state, error, connector) = match deliver(intent) {
            Ok(connector) => (IntentState::Delivered, None, connector),
            Err(reason) => (IntentState::Failed, Some(reason), "none"),
        };
        let audit = AuditEntry {
            at: now_ms(),
            actor: "host".into(),
            action: format!("intent.{}", state.as_str()),
            resource: format!("intent:{}", intent.intent.id),
            origin: "dispatcher".into(),
            success: state == IntentState::Delivered,
            details: json!({"connector": connector, "error": error, "kind": intent.intent.kind}),
        };
        if store
            .settle_intent(intent.seq, state, error.as_deref(), audit)
            .await?
        {
            metrics.delivery(state.as_str());
        }
    }
    Ok(pending.len())
}
