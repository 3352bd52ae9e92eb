//! The evaluation pipeline: an event for an account runs through scorers,
//! triggers, the host's dedup and cooldown policy, conditions and actions,
//! and comes out as intents plus one record per plugin invocation. A
//! ruleset (contract 0.7) is a scorer, a trigger and a condition in one
//! call: it runs with the scorers, its signals are raised after every
//! trigger's and playbook's, and its verdict on each of its signals counts
//! as one more condition's.
//!
//! Fail policy: a failing scorer leaves the account's last good score in
//! place, flagged stale (fail open); a failing trigger emits no signal; a
//! failing condition means the signal does not apply and a failing action
//! plans nothing (fail closed). A failing ruleset does both: its scores
//! are kept stale and it raises nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::history::{MetricHistory, PayloadNumbers};
pub use crate::runtime::PluginRef;
use crate::runtime::bindings::types::{
    Account, Context, Event, Intent, PluginKind, ScoreSummary, Severity,
};
use crate::runtime::{
    Batch, BatchContexts, CallInput, CheckItem, Invocation, InvocationRecord, ItemInput, PlanItem,
    Plugin, Ruling, ScoreCard, Signal, Text, Verdict,
};

/// Intent keys older than this are forgotten (keys carry the day, so a
/// replay inside this window cannot act twice).
const INTENT_KEY_RETENTION_MS: i64 = 35 * crate::history::DAY_MS;

/// The longest cooldown a signal may ask for: 90 days.
const MAX_COOLDOWN_MS: i64 = 90 * crate::history::DAY_MS;

/// Why an event was not evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The event belongs to another account.
    #[error("event {event} is for account `{event_account}`, not `{account}`")]
    WrongAccount {
        /// The event id.
        event: String,
        /// The account the event names.
        event_account: String,
        /// The account being evaluated.
        account: String,
    },
    /// The payload is not a JSON object.
    #[error("event {event} payload is not a JSON object: {reason}")]
    InvalidPayload {
        /// The event id.
        event: String,
        /// What is wrong.
        reason: String,
    },
}

/// An account's current score from one scorer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreState {
    /// The card: shared by the account's state and the evaluation that
    /// computed it, so keeping it in both copies none of its strings.
    pub card: Arc<ScoreCard>,
    /// The scorer that produced it.
    pub plugin: PluginRef,
    /// When it was computed (evaluation time).
    pub computed_at: i64,
    /// Whether the scorer failed since, so this is the last good score.
    pub stale: bool,
}

/// Everything the host keeps about one account between events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountState {
    /// The account snapshot plugins see.
    pub account: Account,
    /// Its metric history.
    pub history: MetricHistory,
    /// Its current scores, by score name.
    pub scores: BTreeMap<String, ScoreState>,
    /// Dedup keys on cooldown, and until when.
    cooldowns: HashMap<String, i64>,
    /// Intent idempotency keys already planned, and when.
    intent_keys: HashMap<String, i64>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            id: String::new(),
            name: String::new(),
            tier: crate::runtime::bindings::types::Tier::SmallBusiness,
            industry: crate::runtime::bindings::types::Industry::Other,
            licensed_seats: 0,
            active_users: 0,
            arr: 0,
            contract_start: None,
            renewal_date: None,
            attributes: Vec::new(),
        }
    }
}

impl AccountState {
    /// Records what an event contributes to the account, before (or, when
    /// rebuilding a state from stored events, instead of) evaluating it: its
    /// metrics into the history, and a numeric `active_users` into the
    /// snapshot.
    pub fn record_event(&mut self, kind: &str, at: i64, payload: &PayloadNumbers<'_>) {
        self.history.record_event(kind, at, payload);
        if let Some(active) = payload.get("active_users").and_then(whole_number) {
            self.account.active_users = u32::try_from(active).unwrap_or(u32::MAX);
        }
    }

    /// A fresh state for `account`.
    pub fn new(account: Account) -> Self {
        Self {
            account,
            ..Self::default()
        }
    }

    /// Dedup keys on cooldown (`plugin/key`) and until when, as the store
    /// keeps them.
    pub fn cooldowns(&self) -> impl Iterator<Item = (&str, i64)> {
        self.cooldowns
            .iter()
            .map(|(key, until)| (key.as_str(), *until))
    }

    /// Puts back cooldowns and planned-intent keys (`plugin/key`, and when
    /// they were planned) read from the store, so a state rebuilt after a
    /// restart suppresses and deduplicates as the live one did.
    pub fn restore(
        &mut self,
        cooldowns: impl IntoIterator<Item = (String, i64)>,
        intent_keys: impl IntoIterator<Item = (String, i64)>,
    ) {
        self.cooldowns.extend(cooldowns);
        self.intent_keys.extend(intent_keys);
    }
}

/// The scores computed in this evaluation (fresh ones only: a stale score
/// was not computed now), as the contract's `context.scores`.
fn fresh_summaries(scores: &[ScoreState]) -> Vec<ScoreSummary> {
    scores
        .iter()
        .filter(|s| !s.stale)
        .map(|s| ScoreSummary {
            // Copied as `str`s: `to_string` on a `Text` goes through its
            // `Display` and the formatter, some 200 instructions each.
            name: s.card.name.as_str().to_owned(),
            value: s.card.value,
            band: s.card.band.as_str().to_owned(),
            rag: s.card.rag,
        })
        .collect()
}

/// What became of a signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "disposition", rename_all = "kebab-case")]
pub enum Disposition {
    /// It applied and its intents were planned.
    Acted {
        /// The combined verdict's policy tags.
        policy_tags: Vec<Text>,
    },
    /// Its dedup key was on cooldown.
    Suppressed {
        /// Until when.
        until: i64,
    },
    /// A condition said it does not apply, or a condition failed.
    NotApplicable {
        /// Why.
        reason: String,
    },
    /// Every action failed, so nothing was planned; the signal is not put
    /// on cooldown.
    ActionFailed {
        /// Which actions failed, and how.
        reason: String,
    },
}

/// A signal and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalRecord {
    /// The trigger, playbook or ruleset that raised it.
    pub plugin: PluginRef,
    /// The signal.
    pub signal: Signal,
    /// What became of it.
    pub disposition: Disposition,
}

/// An intent planned for a signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedIntent {
    /// The action or playbook that planned it.
    pub plugin: PluginRef,
    /// The signal's name.
    pub signal: Text,
    /// The intent.
    pub intent: Intent,
}

/// The result of evaluating one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// The event.
    pub event_id: String,
    /// The account.
    pub account_id: String,
    /// The evaluation time.
    pub now: i64,
    /// Scores, one per scorer that ran (a ruleset's, one per card): fresh,
    /// or the last good one flagged stale when the scorer failed.
    pub scores: Vec<ScoreState>,
    /// Signals raised, and what became of them.
    pub signals: Vec<SignalRecord>,
    /// Intents to carry out (already deduplicated by idempotency key).
    pub intents: Vec<PlannedIntent>,
    /// One record per plugin call.
    pub invocations: Vec<InvocationRecord>,
}

/// The plugins the pipeline runs, grouped by kind and sorted by name so the
/// order of evaluation is fixed.
#[derive(Debug, Default)]
pub struct PluginSet {
    scorers: Vec<Arc<Plugin>>,
    triggers: Vec<Arc<Plugin>>,
    conditions: Vec<Arc<Plugin>>,
    actions: Vec<Arc<Plugin>>,
    playbooks: Vec<Arc<Plugin>>,
    rulesets: Vec<Arc<Plugin>>,
    /// Whether any plugin draws randomness, so that an evaluation's seed is
    /// worth working out.
    draws_randomness: bool,
}

impl PluginSet {
    /// Groups `plugins` by kind.
    pub fn new(plugins: impl IntoIterator<Item = Arc<Plugin>>) -> Self {
        let mut set = Self::default();
        for plugin in plugins {
            match plugin.kind() {
                PluginKind::Scorer => set.scorers.push(plugin),
                PluginKind::Trigger => set.triggers.push(plugin),
                PluginKind::Condition => set.conditions.push(plugin),
                PluginKind::Action => set.actions.push(plugin),
                PluginKind::Playbook => set.playbooks.push(plugin),
                PluginKind::Ruleset => set.rulesets.push(plugin),
            }
        }
        for group in [
            &mut set.scorers,
            &mut set.triggers,
            &mut set.conditions,
            &mut set.actions,
            &mut set.playbooks,
            &mut set.rulesets,
        ] {
            group.sort_by(|a, b| a.name().cmp(b.name()).then(a.digest().cmp(b.digest())));
        }
        let draws_randomness = set.iter().any(|plugin| plugin.draws_randomness());
        set.draws_randomness = draws_randomness;
        set
    }

    /// Every plugin, scorers first, then rulesets.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.scorers
            .iter()
            .chain(&self.rulesets)
            .chain(&self.triggers)
            .chain(&self.conditions)
            .chain(&self.actions)
            .chain(&self.playbooks)
    }

    /// How many plugins there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs events through the current plugin set. The set is swapped
/// atomically; an evaluation in flight keeps the set it started with.
#[derive(Debug)]
pub struct Pipeline {
    plugins: ArcSwap<PluginSet>,
}

/// The per-event inputs every call shares.
struct Call<'a> {
    now: i64,
    seed: [u8; 32],
    ctx: &'a Context,
}

impl<'a> Call<'a> {
    /// The call input for `plugin`: randomness seeded from the event and the
    /// plugin's digest, so the same plugin on the same event replays exactly.
    fn input<'h>(&self, plugin: &Plugin, history: &'h mut MetricHistory) -> CallInput<'h> {
        CallInput {
            now: self.now,
            seed: plugin_seed(self.seed, plugin),
            history,
        }
    }
}

/// The seed of `plugin`'s randomness for the event seeded `seed`, so the
/// same plugin on the same event replays exactly; zeros for a plugin that
/// cannot draw from it (and is not reseeded).
fn plugin_seed(mut seed: [u8; 32], plugin: &Plugin) -> [u8; 32] {
    if !plugin.draws_randomness() {
        return [0; 32];
    }
    for (byte, digest_byte) in seed.iter_mut().zip(plugin.digest().bytes()) {
        *byte ^= digest_byte;
    }
    seed
}

/// An event being evaluated: its account's state (whose history is lent
/// to the plugin calls while the stages run), its seed and its result so
/// far.
struct Prepared<'a> {
    state: &'a mut AccountState,
    /// Zeros until `evaluate` works it out, which it does only for a plugin
    /// set that draws randomness: no other can tell one seed from another.
    seed: [u8; 32],
    evaluation: Evaluation,
}

impl Prepared<'_> {
    /// The input of `plugin`'s call on this event.
    fn input(&self, plugin: &Plugin) -> ItemInput {
        ItemInput {
            now: self.evaluation.now,
            seed: plugin_seed(self.seed, plugin),
        }
    }
}

/// What one trigger, playbook or ruleset raised for one event.
struct Raised {
    /// Its position among the pipeline's sources.
    source: usize,
    /// The record of the `evaluate` call; none for a ruleset, whose `rule`
    /// call was recorded with the scores.
    record: Option<InvocationRecord>,
    /// The signals (none if the call failed).
    signals: Vec<Signal>,
    /// A ruleset's verdict on each signal, one for one; empty for a
    /// trigger or playbook. A verdict is moved out (to `own_ruled`) when
    /// its signal is checked with the batch.
    verdicts: Vec<Verdict>,
}

/// How a raised signal is settled.
enum Fate {
    /// On cooldown from an earlier event.
    Suppressed { until: i64 },
    /// Checked with the batch: the position of its check item.
    Checked { at: usize },
    /// Its key repeats an earlier signal of the same event, so it is
    /// settled alone, after that one.
    Alone,
}

/// How many events ahead of the one being prepared the pipeline
/// prefetches: far enough ahead that the loads are done when their event
/// comes (preparing an event takes some hundreds of nanoseconds, about as
/// long as a load from memory), near enough that the lines are still in
/// the nearest cache then. Two and eight measured the same as four
/// (BENCHMARKS.md, "What was made faster", 2026-12-07 from 19:37).
const PREFETCH_DISTANCE: usize = 4;

/// The cache lines an event's evaluation reads first, and that over a large
/// portfolio are rarely still in the cache: its event's strings (the
/// payload's first and last line) and its account's id, name and
/// attributes. Addresses, not references: the state is lent mutably
/// before they are used, and a prefetch of a stale address is harmless.
/// An empty string or list has no allocation (its pointer is a dangling
/// placeholder), so it is left out: null.
struct FirstReads([*const u8; 8]);

impl FirstReads {
    fn of(state: &AccountState, event: &Event) -> Self {
        let payload = event.payload.as_bytes();
        Self([
            allocation(event.id.as_bytes()),
            allocation(event.account_id.as_bytes()),
            allocation(event.kind.as_bytes()),
            allocation(payload),
            payload.last().map_or(std::ptr::null(), std::ptr::from_ref),
            allocation(state.account.id.as_bytes()),
            allocation(state.account.name.as_bytes()),
            allocation(&state.account.attributes),
        ])
    }

    fn prefetch(&self) {
        for address in self.0.into_iter().filter(|address| !address.is_null()) {
            crate::prefetch::prefetch(address);
        }
    }
}

/// Where `items` start, or null for none (no allocation to prefetch).
fn allocation<T>(items: &[T]) -> *const u8 {
    if items.is_empty() {
        std::ptr::null()
    } else {
        items.as_ptr().cast()
    }
}

/// Validates `event` for `state`, records it into the state and sets up
/// its evaluation and its context (scores empty: scorers see none).
fn prepare<'a>(
    state: &'a mut AccountState,
    event: &Event,
) -> Result<(Prepared<'a>, Context), PipelineError> {
    if event.account_id != state.account.id {
        return Err(PipelineError::WrongAccount {
            event: event.id.clone(),
            event_account: event.account_id.clone(),
            account: state.account.id.clone(),
        });
    }
    let payload =
        PayloadNumbers::parse(&event.payload).map_err(|e| PipelineError::InvalidPayload {
            event: event.id.clone(),
            reason: e.to_string(),
        })?;
    let now = event.occurred_at;
    state.record_event(&event.kind, now, &payload);
    // The ids are not copied here: `evaluate` moves them over from the
    // context's copy of the event when it is done with it.
    let evaluation = Evaluation {
        now,
        ..Evaluation::default()
    };
    // The snapshot is lent to the context, not copied: nothing reads the
    // state's account while the stages run, and `evaluate` gives it back
    // (as it does the history).
    let context = Context {
        account: std::mem::take(&mut state.account),
        event: event.clone(),
        now,
        scores: Vec::new(),
    };
    Ok((
        Prepared {
            state,
            seed: [0; 32],
            evaluation,
        },
        context,
    ))
}

/// The seed of an evaluation's randomness: SHA-256 of the account id, a NUL
/// and the event id (hashed in pieces, so the text is not built).
fn evaluation_seed(account_id: &str, event_id: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(account_id)
        .chain_update([0u8])
        .chain_update(event_id)
        .finalize()
        .into()
}

/// The positions of the contexts whose event `plugin` subscribes to.
fn subscribed(plugin: &Plugin, contexts: &[Context]) -> Vec<usize> {
    contexts
        .iter()
        .enumerate()
        .filter(|(_, ctx)| plugin.subscribes_to(&ctx.event.kind))
        .map(|(at, _)| at)
        .collect()
}

/// Calls `plugin` (through `call`) on the `chosen` events: on the whole
/// batch in place when every event is chosen, else on copies of the chosen
/// contexts with their histories moved over and back. One invocation per
/// chosen event, in order.
fn call_subset<R>(
    plugin: &Plugin,
    items: &[Prepared<'_>],
    shared: &BatchContexts<'_>,
    histories: &mut [MetricHistory],
    chosen: &[usize],
    call: impl FnOnce(Batch<'_>) -> Vec<Invocation<R>>,
) -> Vec<Invocation<R>> {
    if chosen.is_empty() {
        return Vec::new();
    }
    let contexts = shared.as_slice();
    if chosen.len() == contexts.len() {
        let inputs: Vec<ItemInput> = items.iter().map(|item| item.input(plugin)).collect();
        return call(Batch {
            contexts: shared,
            inputs: &inputs,
            histories,
        });
    }
    let picked: Vec<Context> = chosen
        .iter()
        .filter_map(|at| contexts.get(*at).cloned())
        .collect();
    let inputs: Vec<ItemInput> = chosen
        .iter()
        .filter_map(|at| items.get(*at).map(|item| item.input(plugin)))
        .collect();
    let mut lent: Vec<MetricHistory> = chosen
        .iter()
        .map(|at| {
            histories
                .get_mut(*at)
                .map(std::mem::take)
                .unwrap_or_default()
        })
        .collect();
    let invocations = call(Batch {
        contexts: &BatchContexts::new(&picked),
        inputs: &inputs,
        histories: &mut lent,
    });
    for (at, history) in chosen.iter().zip(lent) {
        if let Some(slot) = histories.get_mut(*at) {
            *slot = history;
        }
    }
    invocations
}

/// Keeps a scorer's card (into the account's scores and history), or on
/// failure the last good score, flagged stale (fail open).
fn record_score(
    scorer: &Arc<Plugin>,
    item: &mut Prepared<'_>,
    history: &mut MetricHistory,
    invocation: Invocation<ScoreCard>,
) {
    match record(&mut item.evaluation, invocation) {
        Some(card) => keep_score(scorer, item, history, card),
        None => keep_stale(scorer, item),
    }
}

/// Keeps a ruleset's cards as [`record_score`] keeps a scorer's (on
/// failure, its last good scores, flagged stale), and gives back its
/// signals and its verdicts on them (none on failure).
fn record_ruling(
    ruleset: &Arc<Plugin>,
    item: &mut Prepared<'_>,
    history: &mut MetricHistory,
    invocation: Invocation<Ruling>,
) -> (Vec<Signal>, Vec<Verdict>) {
    match record(&mut item.evaluation, invocation) {
        Some(Ruling {
            cards,
            signals,
            verdicts,
        }) => {
            for card in cards {
                keep_score(ruleset, item, history, card);
            }
            (signals, verdicts)
        }
        None => {
            keep_stale(ruleset, item);
            (Vec::new(), Vec::new())
        }
    }
}

/// Keeps a fresh card of `plugin` in the account's scores and history, and
/// in the evaluation's scores.
fn keep_score(
    plugin: &Arc<Plugin>,
    item: &mut Prepared<'_>,
    history: &mut MetricHistory,
    card: ScoreCard,
) {
    let now = item.evaluation.now;
    history.record(&card.name, now, card.value);
    let score = ScoreState {
        card: Arc::new(card),
        plugin: PluginRef::from(plugin.as_ref()),
        computed_at: now,
        stale: false,
    };
    // The name is copied for the key only the first time the account gets
    // this score: after that the entry is replaced.
    match item.state.scores.get_mut(score.card.name.as_str()) {
        Some(kept) => *kept = score.clone(),
        None => {
            item.state
                .scores
                .insert(score.card.name.to_string(), score.clone());
        }
    }
    item.evaluation.scores.push(score);
}

/// Flags the account's scores from `plugin`, which failed, stale (its last
/// good ones), into the evaluation's scores too.
fn keep_stale(plugin: &Arc<Plugin>, item: &mut Prepared<'_>) {
    for score in item.state.scores.values_mut() {
        if *score.plugin.name == *plugin.name() {
            score.stale = true;
            item.evaluation.scores.push(score.clone());
        }
    }
}

/// The record of a signal whose dedup key is on cooldown until `until`.
fn suppressed(source: &Plugin, signal: Signal, until: i64) -> SignalRecord {
    SignalRecord {
        plugin: PluginRef::from(source),
        signal,
        disposition: Disposition::Suppressed { until },
    }
}

/// The key a signal's cooldown is kept under: scoped to the plugin that
/// chose it, so no plugin can silence another's signals.
fn cooldown_key(source: &Plugin, signal: &Signal) -> String {
    format!("{}/{}", source.name(), signal.dedup_key)
}

/// How `conclude` gets an action's plan for a signal and its combined
/// verdict: by calling the action, or from a batch call made before.
type Planner<'a> =
    dyn FnMut(&mut AccountState, &Arc<Plugin>, &Signal, &Verdict) -> Invocation<Vec<Intent>> + 'a;

/// The plugins that plan a signal: a playbook's own signals by the playbook
/// alone, every other signal by every action.
fn planners_of<'a>(plugins: &'a PluginSet, playbook: Option<&'a Arc<Plugin>>) -> &'a [Arc<Plugin>] {
    match playbook {
        Some(playbook) => std::slice::from_ref(playbook),
        None => &plugins.actions,
    }
}

/// The reason of the combined verdict the actions see.
const ALL_CONDITIONS_APPLY: &str = "all conditions apply";

/// Events evaluated together, stage by stage, by one call of each plugin:
/// [`Pipeline::process_batch`] takes a larger batch this many at a time.
/// Each stage goes over every event of the chunk, so the chunk's account
/// states and the plugin's packed contexts and results must stay in the
/// cache from one stage to the next; a plugin call's own cost is spread
/// over the chunk. Over the bench's 1,000 accounts, 64 at a time took
/// 0.89x the time of 256 as one ruleset and 0.96x as five plugins, and 32
/// no less than 64 (BENCHMARKS.md, "What was made faster", 2026-12-07
/// 17:15). A caller that keeps a chunk's evaluations only until the next
/// (as the service's evaluator does) keeps their memory in the cache too.
pub const EVALUATION_CHUNK: usize = 64;

/// One action's (or playbook's) `plan` call over a batch.
struct PlannerBatch<'p> {
    /// The action.
    plugin: &'p Arc<Plugin>,
    /// What it plans, in order.
    items: Vec<PlanItem>,
    /// The check item (signal) each of `items` is for.
    checks: Vec<usize>,
    /// Its plans, by check item, until each is settled.
    plans: Vec<Option<Invocation<Vec<Intent>>>>,
}

/// The policy tags of the combined verdict, when every condition's answer
/// (`None` for one that failed) applies; `None` when one does not or
/// failed. Merged as `conclude` merges them.
fn combined_tags<'v>(answers: impl Iterator<Item = Option<&'v Verdict>>) -> Option<Vec<Text>> {
    let mut tags = TagSet::default();
    for answer in answers {
        let verdict = answer.filter(|verdict| verdict.applies)?;
        tags.extend(verdict.policy_tags.clone());
    }
    Some(tags.into_vec())
}

/// What is left in a ruleset's verdict's place while it is moved out to
/// be settled with its checked signal: allocating nothing.
fn moved_verdict() -> Verdict {
    Verdict {
        applies: false,
        reason: Text::const_new(""),
        policy_tags: Vec::new(),
    }
}

/// What is left in a signal's place while it is moved into a check item:
/// empty, and allocating nothing.
fn moved_signal() -> Signal {
    Signal {
        name: Text::const_new(""),
        severity: Severity::Info,
        reason: Text::const_new(""),
        dedup_key: Text::const_new(""),
        cooldown_secs: 0,
    }
}

/// Until when `signal` is on cooldown at `now`, if it is. The key is only
/// built when some key is on cooldown: most accounts have none.
fn on_cooldown(state: &AccountState, source: &Plugin, signal: &Signal, now: i64) -> Option<i64> {
    if state.cooldowns.is_empty() {
        return None;
    }
    state
        .cooldowns
        .get(&cooldown_key(source, signal))
        .copied()
        .filter(|until| *until > now)
}

impl Pipeline {
    /// A pipeline over `plugins`.
    pub fn new(plugins: PluginSet) -> Self {
        Self {
            plugins: ArcSwap::from_pointee(plugins),
        }
    }

    /// The current plugin set.
    pub fn plugins(&self) -> Arc<PluginSet> {
        self.plugins.load_full()
    }

    /// Replaces the plugin set; evaluations already running finish on the
    /// old one.
    pub fn swap(&self, plugins: PluginSet) {
        self.plugins.store(Arc::new(plugins));
    }

    /// Records `event` into `state` and evaluates it.
    pub fn process(
        &self,
        state: &mut AccountState,
        event: &Event,
    ) -> Result<Evaluation, PipelineError> {
        let span = tracing::debug_span!("vigil.pipeline.process", account = %event.account_id, event = %event.id);
        let _entered = span.enter();
        let (prepared, context) = prepare(state, event)?;
        let mut prepared = [prepared];
        let mut contexts = vec![context];
        self.evaluate(&mut prepared, &mut contexts);
        let [prepared] = prepared;
        Ok(prepared.evaluation)
    }

    /// Records each event into its account's state and evaluates them all,
    /// one batch call per plugin and stage for every [`EVALUATION_CHUNK`]
    /// events instead of one call per event (contract 0.2 plugins on; a
    /// 0.1 plugin is still called once per event). Each event is evaluated
    /// exactly as [`Pipeline::process`] would evaluate it alone — the same
    /// scores, signals, dispositions, intents and invocation records in
    /// the same order — so a batch holds at most one event per account,
    /// which the `&mut` states ensure.
    pub fn process_batch(
        &self,
        batch: &mut [(&mut AccountState, &Event)],
    ) -> Vec<Result<Evaluation, PipelineError>> {
        let span = tracing::debug_span!("vigil.pipeline.process_batch", events = batch.len());
        let _entered = span.enter();
        let mut results = Vec::with_capacity(batch.len());
        for chunk in batch.chunks_mut(EVALUATION_CHUNK) {
            results.extend(self.process_chunk(chunk));
        }
        results
    }

    /// [`Pipeline::process_batch`] for at most [`EVALUATION_CHUNK`] events.
    fn process_chunk(
        &self,
        batch: &mut [(&mut AccountState, &Event)],
    ) -> Vec<Result<Evaluation, PipelineError>> {
        let mut answers: Vec<Result<usize, PipelineError>> = Vec::with_capacity(batch.len());
        let mut prepared = Vec::with_capacity(batch.len());
        let mut contexts = Vec::with_capacity(batch.len());
        // Each event's first reads are prefetched a few events ahead of
        // the one being prepared, and the event and state they are found
        // through as many again ahead of that.
        let mut rest = &mut *batch;
        while let Some(((state, event), after)) = std::mem::take(&mut rest).split_first_mut() {
            if let Some((state, event)) = after.get(2 * PREFETCH_DISTANCE - 1) {
                crate::prefetch::prefetch_value::<Event>(event);
                crate::prefetch::prefetch_value::<AccountState>(state);
            }
            if let Some((state, event)) = after.get(PREFETCH_DISTANCE - 1) {
                FirstReads::of(state, event).prefetch();
            }
            rest = after;
            match prepare(state, event) {
                Ok((item, context)) => {
                    answers.push(Ok(prepared.len()));
                    prepared.push(item);
                    contexts.push(context);
                }
                Err(error) => answers.push(Err(error)),
            }
        }
        self.evaluate(&mut prepared, &mut contexts);
        answers
            .into_iter()
            .map(|answer| {
                answer.map(|at| {
                    prepared
                        .get_mut(at)
                        .map(|item| std::mem::take(&mut item.evaluation))
                        .unwrap_or_default()
                })
            })
            .collect()
    }

    /// Runs prepared events through every stage, stage by stage, gives
    /// each state back the account `prepare` lent to its context, and
    /// gives each evaluation its event's ids from the context's event.
    fn evaluate(&self, items: &mut [Prepared<'_>], lent: &mut [Context]) {
        let plugins = self.plugins.load_full();
        // An evaluation's seed is a SHA-256 of its ids, worked out only
        // when a plugin of the set that evaluates it can draw from the
        // stream it seeds: the set is the one loaded here, for every stage,
        // so a swap in between cannot leave a drawing plugin unseeded. The
        // hash took 70 ns an event with the SHA instructions and 190 ns
        // without, some 1.5 % and 4 % of an event in the bench
        // (BENCHMARKS.md).
        if plugins.draws_randomness {
            for (item, context) in items.iter_mut().zip(lent.iter()) {
                item.seed = evaluation_seed(&context.event.account_id, &context.event.id);
            }
        }
        let contexts = &mut *lent;
        let mut histories: Vec<MetricHistory> = items
            .iter_mut()
            .map(|item| std::mem::take(&mut item.state.history))
            .collect();
        // Room for the records of a usual event, so that the list is
        // allocated once rather than grown as the stages add to it: one per
        // scorer and source, and for about one signal of each source a
        // check per condition and one more record (a plan, or a playbook's
        // own check). An event that raises nothing keeps the spare room
        // until its evaluation is dropped: some hundred bytes.
        let sources_count = plugins.triggers.len() + plugins.playbooks.len();
        let usual_records = plugins.scorers.len()
            + plugins.rulesets.len() * (plugins.conditions.len() + 2)
            + sources_count * (plugins.conditions.len() + 2);
        for item in items.iter_mut() {
            item.evaluation.invocations.reserve(usual_records);
        }

        // Scorers see no scores; everything after sees the fresh ones. A
        // scorer's score is in the history of the scorers after it. Each
        // stage's contexts are packed once for all its plugins.
        let scored = BatchContexts::new(contexts);
        for scorer in &plugins.scorers {
            let chosen = subscribed(scorer, contexts);
            let invocations =
                call_subset(scorer, items, &scored, &mut histories, &chosen, |batch| {
                    scorer.score_batch(batch)
                });
            for (at, invocation) in chosen.into_iter().zip(invocations) {
                let (Some(item), Some(history)) = (items.get_mut(at), histories.get_mut(at)) else {
                    continue;
                };
                record_score(scorer, item, history, invocation);
            }
        }
        // Rulesets run with the scorers, on the same contexts: their cards
        // are kept as a scorer's, their signals and verdicts raised after
        // every trigger's and playbook's, below.
        //
        // Each event's lists of raised signals are allocated at their first
        // entry, with room for every plugin that can add one, rather than
        // grown to a `Vec`'s first four (an entry is 152 bytes): over a
        // chunk of events the spare room was memory allocated and passed
        // over for nothing. An event no plugin raised for allocates none.
        let mut ruled: Vec<Vec<Raised>> = items.iter().map(|_| Vec::new()).collect();
        let first_ruleset = plugins.triggers.len() + plugins.playbooks.len();
        for (ruleset_at, ruleset) in plugins.rulesets.iter().enumerate() {
            let chosen = subscribed(ruleset, contexts);
            let invocations =
                call_subset(ruleset, items, &scored, &mut histories, &chosen, |batch| {
                    ruleset.rule_batch(batch)
                });
            for (at, invocation) in chosen.into_iter().zip(invocations) {
                let (Some(item), Some(history), Some(ruled)) =
                    (items.get_mut(at), histories.get_mut(at), ruled.get_mut(at))
                else {
                    continue;
                };
                let (signals, verdicts) = record_ruling(ruleset, item, history, invocation);
                ruled.reserve_exact(plugins.rulesets.len().saturating_sub(ruled.len()));
                ruled.push(Raised {
                    source: first_ruleset + ruleset_at,
                    record: None,
                    signals,
                    verdicts,
                });
            }
        }
        // The stages after see the same contexts but for the scores: their
        // packing is made from the scorers' (when one was made), only the
        // scores packed anew.
        let scored = scored.into_packing();
        for (item, context) in items.iter().zip(contexts.iter_mut()) {
            context.scores = fresh_summaries(&item.evaluation.scores);
        }
        let contexts: &[Context] = contexts;
        let shared = BatchContexts::rescored(contexts, scored);

        // Triggers' signals go to every condition and action; a playbook's
        // are also checked by, and planned by, the playbook itself; a
        // ruleset's are checked by every condition and by its own verdicts
        // (the sources from `first_ruleset` on), and planned by every
        // action.
        let sources: Vec<(&Arc<Plugin>, Option<&Arc<Plugin>>)> = plugins
            .triggers
            .iter()
            .map(|trigger| (trigger, None))
            .chain(
                plugins
                    .playbooks
                    .iter()
                    .map(|playbook| (playbook, Some(playbook))),
            )
            .chain(plugins.rulesets.iter().map(|ruleset| (ruleset, None)))
            .collect();
        // Room, at the first entry, for every source's: the rulesets' are
        // appended below (or, where no trigger or playbook raised, their
        // list is taken whole).
        let mut raised: Vec<Vec<Raised>> = items.iter().map(|_| Vec::new()).collect();
        for (source_at, (source, _)) in sources.iter().enumerate().take(first_ruleset) {
            let chosen = subscribed(source, contexts);
            let invocations =
                call_subset(source, items, &shared, &mut histories, &chosen, |batch| {
                    source.evaluate_batch(batch)
                });
            for (at, invocation) in chosen.into_iter().zip(invocations) {
                if let Some(raised) = raised.get_mut(at) {
                    raised.reserve_exact(sources.len().saturating_sub(raised.len()));
                    raised.push(Raised {
                        source: source_at,
                        record: Some(invocation.record),
                        signals: invocation.output.unwrap_or_default(),
                        verdicts: Vec::new(),
                    });
                }
            }
        }
        for (raised, ruled) in raised.iter_mut().zip(ruled) {
            // An event no trigger or playbook raised for (as under a set of
            // rulesets alone) takes its rulesets' list as it is, rather
            // than a second list allocated and the first copied into it.
            if raised.is_empty() {
                *raised = ruled;
            } else {
                raised.extend(ruled);
            }
        }

        // Which signals reach the conditions now: those not on cooldown
        // whose key no earlier signal of the same event and source shares.
        // A repeated key waits for the earlier signal's outcome (it may put
        // the key on cooldown), so it is settled alone, in order, below.
        //
        // The fates are kept in one list, in the order the loops below
        // walk the signals (event by event, source by source, signal by
        // signal), rather than a list per event and source: most events
        // raise a few signals, and those lists were several allocations
        // an event.
        let signal_count: usize = raised.iter().flatten().map(|r| r.signals.len()).sum();
        let mut fates: Vec<Fate> = Vec::with_capacity(signal_count);
        let mut checked_source: Vec<usize> = Vec::new();
        {
            // Cooldown keys seen so far in the event, as (plugin name,
            // dedup key) without building the string (a plugin name has no
            // `/`, so the pair is as distinct as the key). One set for every
            // event, emptied between them, so it allocates once a batch.
            let mut seen: foldhash::HashSet<(&str, &str)> = foldhash::HashSet::default();
            for (item, raised) in items.iter().zip(&raised) {
                seen.clear();
                let now = item.evaluation.now;
                for raised in raised {
                    let Some((source, _)) = sources.get(raised.source) else {
                        continue;
                    };
                    for signal in &raised.signals {
                        fates.push(
                            if !seen.insert((source.name(), signal.dedup_key.as_str())) {
                                Fate::Alone
                            } else if let Some(until) = on_cooldown(item.state, source, signal, now)
                            {
                                Fate::Suppressed { until }
                            } else {
                                checked_source.push(raised.source);
                                Fate::Checked {
                                    at: checked_source.len() - 1,
                                }
                            },
                        );
                    }
                }
            }
        }
        // The signals to check move into the check items (in the order of
        // their fates) and come back out to be settled: not copied. A
        // ruleset's verdict on each moves beside it (`own_ruled`, by check
        // item; `None` for another source's signal).
        let mut to_check: Vec<CheckItem> = Vec::with_capacity(checked_source.len());
        let mut own_ruled: Vec<Option<Verdict>> = Vec::new();
        let mut fate_of = fates.iter();
        for (at, raised) in raised.iter_mut().enumerate() {
            for raised in raised.iter_mut() {
                if sources.get(raised.source).is_none() {
                    continue;
                }
                let mut verdicts = raised.verdicts.iter_mut();
                for signal in &mut raised.signals {
                    let verdict = verdicts.next();
                    if let Some(Fate::Checked { .. }) = fate_of.next() {
                        to_check.push(CheckItem {
                            context: u32::try_from(at).unwrap_or(u32::MAX),
                            signal: std::mem::replace(signal, moved_signal()),
                        });
                        let verdict = verdict.map(|v| std::mem::replace(v, moved_verdict()));
                        if verdict.is_some() || !own_ruled.is_empty() {
                            // Filled in only once a ruleset's verdict
                            // comes, so a set without rulesets allocates
                            // nothing for it.
                            own_ruled.resize(to_check.len() - 1, None);
                            own_ruled.push(verdict);
                        }
                    }
                }
            }
        }

        // Every condition checks every such signal in one call; a playbook
        // checks its own signals in another.
        let inputs = |plugin: &Plugin| -> Vec<ItemInput> {
            items.iter().map(|item| item.input(plugin)).collect()
        };
        let mut verdicts: Vec<Vec<Option<Invocation<Verdict>>>> = Vec::new();
        for condition in &plugins.conditions {
            let answers = if to_check.is_empty() {
                Vec::new()
            } else {
                let inputs = inputs(condition);
                condition.check_batch(
                    Batch {
                        contexts: &shared,
                        inputs: &inputs,
                        histories: &mut histories,
                    },
                    &to_check,
                )
            };
            verdicts.push(answers.into_iter().map(Some).collect());
        }
        let mut own_verdicts: Vec<Vec<Option<Invocation<Verdict>>>> = Vec::new();
        for (source_at, (_, playbook)) in sources.iter().enumerate() {
            let mut answers: Vec<Option<Invocation<Verdict>>> =
                to_check.iter().map(|_| None).collect();
            if let Some(playbook) = playbook {
                let mine: Vec<usize> = (0..to_check.len())
                    .filter(|k| checked_source.get(*k) == Some(&source_at))
                    .collect();
                if !mine.is_empty() {
                    let subset: Vec<CheckItem> = mine
                        .iter()
                        .filter_map(|k| to_check.get(*k).cloned())
                        .collect();
                    let inputs = inputs(playbook);
                    let batch = Batch {
                        contexts: &shared,
                        inputs: &inputs,
                        histories: &mut histories,
                    };
                    for (k, answer) in mine.into_iter().zip(playbook.check_batch(batch, &subset)) {
                        if let Some(slot) = answers.get_mut(k) {
                            *slot = Some(answer);
                        }
                    }
                }
            }
            own_verdicts.push(answers);
        }

        // What the actions plan for each checked signal that applies, in
        // one call per action over the batch: a plan depends only on the
        // context, the signal and the combined verdict, all known now. A
        // playbook's signals are planned by the playbook alone.
        let mut planners: Vec<PlannerBatch<'_>> = Vec::new();
        for (k, check) in to_check.iter().enumerate() {
            let source_at = checked_source.get(k).copied().unwrap_or(usize::MAX);
            let Some(&(_, playbook)) = sources.get(source_at) else {
                continue;
            };
            let answers = verdicts
                .iter()
                .filter_map(|answers| answers.get(k).and_then(Option::as_ref))
                .chain(playbook.and_then(|_| {
                    own_verdicts
                        .get(source_at)
                        .and_then(|answers| answers.get(k))
                        .and_then(Option::as_ref)
                }))
                .map(|answer| answer.output.as_ref())
                .chain(own_ruled.get(k).and_then(Option::as_ref).map(Some));
            let acting = planners_of(&plugins, playbook);
            // The tags are copied for the plans only when some action plans.
            if acting.is_empty() {
                continue;
            }
            let Some(policy_tags) = combined_tags(answers) else {
                continue;
            };
            for action in acting {
                let item = PlanItem {
                    context: check.context,
                    signal: check.signal.clone(),
                    verdict: Verdict {
                        applies: true,
                        reason: ALL_CONDITIONS_APPLY.into(),
                        policy_tags: policy_tags.clone(),
                    },
                };
                match planners
                    .iter_mut()
                    .find(|planner| Arc::ptr_eq(planner.plugin, action))
                {
                    Some(planner) => {
                        planner.items.push(item);
                        planner.checks.push(k);
                    }
                    None => planners.push(PlannerBatch {
                        plugin: action,
                        items: vec![item],
                        checks: vec![k],
                        plans: Vec::new(),
                    }),
                }
            }
        }
        for planner in &mut planners {
            let inputs = inputs(planner.plugin);
            let answers = planner.plugin.plan_batch(
                Batch {
                    contexts: &shared,
                    inputs: &inputs,
                    histories: &mut histories,
                },
                &planner.items,
            );
            planner.plans = to_check.iter().map(|_| None).collect();
            for (k, answer) in planner.checks.iter().zip(answers) {
                if let Some(slot) = planner.plans.get_mut(*k) {
                    *slot = Some(answer);
                }
            }
        }

        // Settle every signal in order, as the sequential pipeline would.
        for (item, history) in items.iter_mut().zip(histories) {
            item.state.history = history;
        }
        let mut fates = fates.into_iter();
        // Every checked signal's answers, in turn: one list for all.
        let mut checks: Vec<(&Arc<Plugin>, Invocation<Verdict>)> = Vec::new();
        for (at, (item, raised)) in items.iter_mut().zip(raised).enumerate() {
            let Some(context) = contexts.get(at) else {
                // Its fates are passed over, so that the next event's line up.
                let skipped = raised
                    .iter()
                    .filter(|raised| sources.get(raised.source).is_some())
                    .map(|raised| raised.signals.len())
                    .sum();
                for _ in 0..skipped {
                    fates.next();
                }
                continue;
            };
            let call = Call {
                now: item.evaluation.now,
                seed: item.seed,
                ctx: context,
            };
            item.evaluation
                .signals
                .reserve(raised.iter().map(|raised| raised.signals.len()).sum());
            for raised in raised {
                let Some(&(source, playbook)) = sources.get(raised.source) else {
                    continue;
                };
                if let Some(record) = raised.record {
                    item.evaluation.invocations.push(record);
                }
                let mut ruled_verdicts = raised.verdicts.into_iter();
                for signal in raised.signals {
                    // A ruleset's verdict on this signal (moved out to
                    // `own_ruled` if the signal was checked with the batch).
                    let own = ruled_verdicts.next();
                    // Every signal has a fate; were one missing, settling
                    // the signal alone asks every condition itself.
                    match fates.next().unwrap_or(Fate::Alone) {
                        Fate::Alone => self.act_on(
                            &plugins,
                            item.state,
                            &call,
                            source,
                            playbook,
                            signal,
                            own,
                            &mut item.evaluation,
                        ),
                        Fate::Suppressed { until } => item
                            .evaluation
                            .signals
                            .push(suppressed(source, signal, until)),
                        Fate::Checked { at: k } => {
                            // Back from its check item.
                            let signal = match to_check.get_mut(k) {
                                Some(item) => std::mem::replace(&mut item.signal, moved_signal()),
                                None => signal,
                            };
                            checks.clear();
                            for (condition, answers) in plugins.conditions.iter().zip(&mut verdicts)
                            {
                                if let Some(answer) = answers.get_mut(k).and_then(Option::take) {
                                    checks.push((condition, answer));
                                }
                            }
                            if let Some(playbook) = playbook
                                && let Some(answer) = own_verdicts
                                    .get_mut(raised.source)
                                    .and_then(|answers| answers.get_mut(k))
                                    .and_then(Option::take)
                            {
                                checks.push((playbook, answer));
                            }
                            // The plans made with the batch; one missing (none
                            // is) would be asked for now.
                            let mut plan =
                                |state: &mut AccountState,
                                 action: &Arc<Plugin>,
                                 signal: &Signal,
                                 verdict: &Verdict| {
                                    let planned = planners
                                        .iter_mut()
                                        .find(|planner| Arc::ptr_eq(planner.plugin, action))
                                        .and_then(|planner| planner.plans.get_mut(k))
                                        .and_then(Option::take);
                                    planned.unwrap_or_else(|| {
                                        action.plan(
                                            call.input(action, &mut state.history),
                                            call.ctx,
                                            signal,
                                            verdict,
                                        )
                                    })
                                };
                            let own = own_ruled.get_mut(k).and_then(Option::take);
                            self.conclude(
                                &plugins,
                                item.state,
                                &call,
                                source,
                                playbook,
                                signal,
                                &mut checks,
                                own,
                                &mut plan,
                                &mut item.evaluation,
                            );
                        }
                    }
                }
            }
            let now = item.evaluation.now;
            item.state
                .intent_keys
                .retain(|_, at| *at > now.saturating_sub(INTENT_KEY_RETENTION_MS));
            item.state.cooldowns.retain(|_, until| *until > now);
        }
        debug_assert!(
            fates.next().is_none(),
            "every fate is read by the signal it was made for"
        );
        for (item, context) in items.iter_mut().zip(lent.iter_mut()) {
            item.state.account = std::mem::take(&mut context.account);
            item.evaluation.event_id = std::mem::take(&mut context.event.id);
            item.evaluation.account_id = std::mem::take(&mut context.event.account_id);
        }
    }

    /// Applies cooldown, conditions and actions to one signal. A playbook's
    /// signals are also checked by, and planned by, the playbook itself; a
    /// ruleset's come with its own verdict (`own`).
    #[allow(clippy::too_many_arguments)]
    fn act_on(
        &self,
        plugins: &PluginSet,
        state: &mut AccountState,
        call: &Call<'_>,
        source: &Arc<Plugin>,
        playbook: Option<&Arc<Plugin>>,
        signal: Signal,
        own: Option<Verdict>,
        evaluation: &mut Evaluation,
    ) {
        if let Some(until) = on_cooldown(state, source, &signal, call.now) {
            evaluation.signals.push(suppressed(source, signal, until));
            return;
        }
        let mut checks = plugins
            .conditions
            .iter()
            .chain(playbook)
            .map(|condition| {
                let invocation =
                    condition.check(call.input(condition, &mut state.history), call.ctx, &signal);
                (condition, invocation)
            })
            .collect();
        let mut plan =
            |state: &mut AccountState, action: &Arc<Plugin>, signal: &Signal, verdict: &Verdict| {
                action.plan(
                    call.input(action, &mut state.history),
                    call.ctx,
                    signal,
                    verdict,
                )
            };
        self.conclude(
            plugins,
            state,
            call,
            source,
            playbook,
            signal,
            &mut checks,
            own,
            &mut plan,
            evaluation,
        );
    }

    /// Settles a signal that is not on cooldown, given the conditions'
    /// answers (in order, taken out of `checks`) and, for a ruleset's
    /// signal, the ruleset's own verdict after them (`own`, recorded with
    /// its `rule` call): whether it applies, the actions' intents, its
    /// cooldown and its record.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        plugins: &PluginSet,
        state: &mut AccountState,
        call: &Call<'_>,
        source: &Plugin,
        playbook: Option<&Arc<Plugin>>,
        signal: Signal,
        checks: &mut Vec<(&Arc<Plugin>, Invocation<Verdict>)>,
        own: Option<Verdict>,
        plan: &mut Planner<'_>,
        evaluation: &mut Evaluation,
    ) {
        let plugin = PluginRef::from(source);
        let mut applies = true;
        // Why it does not apply, reason after reason.
        let mut reasons = String::new();
        let mut tags = TagSet::default();
        for (condition, invocation) in checks.drain(..) {
            // Spelled out only for a failure: this runs for every signal.
            let failure = invocation
                .output
                .is_none()
                .then(|| invocation.record.outcome.to_string());
            match record(evaluation, invocation) {
                Some(Verdict {
                    applies: verdict_applies,
                    reason,
                    policy_tags,
                }) => {
                    if !verdict_applies {
                        applies = false;
                        push_reason(&mut reasons, format_args!("{}: {reason}", condition.name()));
                    }
                    // The tags are kept only when every condition applies.
                    if applies {
                        tags.extend_from(policy_tags, TagsOf::of(condition));
                    }
                }
                None => {
                    applies = false;
                    push_reason(
                        &mut reasons,
                        format_args!(
                            "condition {} failed: {}",
                            condition.label(),
                            failure.unwrap_or_default()
                        ),
                    );
                }
            }
        }
        if let Some(Verdict {
            applies: own_applies,
            reason,
            policy_tags,
        }) = own
        {
            if !own_applies {
                applies = false;
                push_reason(&mut reasons, format_args!("{}: {reason}", source.name()));
            }
            if applies {
                tags.extend_from(policy_tags, TagsOf::of(source));
            }
        }
        let ordered_tags = tags.into_vec();
        if !applies {
            evaluation.signals.push(SignalRecord {
                plugin,
                signal,
                disposition: Disposition::NotApplicable { reason: reasons },
            });
            return;
        }

        let planners = planners_of(plugins, playbook);
        // The combined verdict the actions see; built when the first action
        // needs it, as it copies every tag.
        let mut verdict = None;
        let mut planned = planners.is_empty();
        let mut failures = Vec::new();
        for action in planners {
            let verdict = verdict.get_or_insert_with(|| Verdict {
                applies: true,
                reason: ALL_CONDITIONS_APPLY.into(),
                policy_tags: ordered_tags.clone(),
            });
            let invocation = plan(state, action, &signal, verdict);
            let Some(intents) = invocation.output else {
                let outcome = invocation.record.outcome.to_string();
                evaluation.invocations.push(invocation.record);
                failures.push(format!("action {} failed: {outcome}", action.label()));
                continue;
            };
            evaluation.invocations.push(invocation.record);
            planned = true;
            for intent in intents {
                let key = format!("{}/{}", action.name(), intent.idempotency_key);
                if state.intent_keys.contains_key(&key) {
                    continue;
                }
                state.intent_keys.insert(key, call.now);
                evaluation.intents.push(PlannedIntent {
                    plugin: PluginRef::from(action.as_ref()),
                    signal: signal.name.clone(),
                    intent,
                });
            }
        }
        if !planned {
            // Every action failed: nothing was planned, so the signal is not
            // put on cooldown and the next event can act on it.
            evaluation.signals.push(SignalRecord {
                plugin,
                signal,
                disposition: Disposition::ActionFailed {
                    reason: failures.join("; "),
                },
            });
            return;
        }
        let cooldown_ms = (i64::from(signal.cooldown_secs) * 1000).min(MAX_COOLDOWN_MS);
        if cooldown_ms > 0 {
            state.cooldowns.insert(
                cooldown_key(source, &signal),
                call.now.saturating_add(cooldown_ms),
            );
        }
        evaluation.signals.push(SignalRecord {
            plugin,
            signal,
            disposition: Disposition::Acted {
                policy_tags: ordered_tags,
            },
        });
    }
}

/// A non-negative whole JSON number, written `8` or `8.0`.
fn whole_number(value: &serde_json::Number) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= u64::MAX as f64)
            .map(|v| v as u64)
    })
}

/// Policy tags merged from several verdicts: each once, in the order first
/// seen. A handful of tags are compared in place; past that a set of
/// copies keeps a flood of tags from one plugin linear.
#[derive(Debug, Default)]
struct TagSet {
    ordered: Vec<Text>,
    seen: BTreeSet<Text>,
}

impl TagSet {
    /// Tags up to which a linear scan is cheaper than the set.
    const SCAN: usize = 16;

    fn extend(&mut self, mut tags: Vec<Text>) {
        // The first verdict's tags (most signals have one condition) are
        // kept in their own list, with any repeat taken out in place.
        if self.ordered.is_empty() && tags.len() <= Self::SCAN {
            let mut at = 0;
            while let (Some(seen), Some(tag)) = (tags.get(..at), tags.get(at)) {
                if seen.contains(tag) {
                    tags.remove(at);
                } else {
                    at += 1;
                }
            }
            self.ordered = tags;
            return;
        }
        self.ordered.reserve(tags.len());
        for tag in tags {
            let fresh = if self.ordered.len() < Self::SCAN {
                !self.ordered.contains(&tag)
            } else {
                if self.seen.is_empty() {
                    self.seen.extend(self.ordered.iter().cloned());
                }
                self.seen.insert(tag.clone())
            };
            if fresh {
                self.ordered.push(tag);
            }
        }
    }

    /// Adds the tags of a verdict from a plugin whose verdicts' tags are
    /// as `of` says: a first verdict's distinct tags are taken as they
    /// are, with no search for repeats (most signals have one condition).
    fn extend_from(&mut self, tags: Vec<Text>, of: TagsOf) {
        match of {
            TagsOf::Declared if self.ordered.is_empty() => self.ordered = tags,
            TagsOf::Declared | TagsOf::Listed => self.extend(tags),
        }
    }

    fn into_vec(self) -> Vec<Text> {
        self.ordered
    }
}

/// How a plugin's verdicts name their policy tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagsOf {
    /// As bits of the tags it declared (contract 0.5 on): each tag once,
    /// since a bit is set once and the declared tags are distinct
    /// (checked at load).
    Declared,
    /// As a list of names, which may repeat one (contracts before 0.5).
    Listed,
}

impl TagsOf {
    fn of(plugin: &Plugin) -> Self {
        // A plugin that declares no tags returns none in a 0.5 verdict, or
        // lists them by name under an older contract.
        if plugin.policy_tags().is_empty() {
            Self::Listed
        } else {
            Self::Declared
        }
    }
}

/// Appends `reason` to `reasons`, after a `; ` if it is not the first.
fn push_reason(reasons: &mut String, reason: std::fmt::Arguments<'_>) {
    use std::fmt::Write as _;
    if !reasons.is_empty() {
        reasons.push_str("; ");
    }
    // The arguments are names and reasons, whose formatting cannot fail,
    // written into a String, which cannot fail either.
    let _ = reasons.write_fmt(reason);
}

/// Keeps the invocation's record and returns its output.
fn record<R>(evaluation: &mut Evaluation, invocation: Invocation<R>) -> Option<R> {
    evaluation.invocations.push(invocation.record);
    invocation.output
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::{TagSet, TagsOf, Text, evaluation_seed};

    #[test]
    fn an_evaluation_seed_is_the_hash_of_the_account_a_nul_and_the_event() {
        // Replays depend on it: an audited decision's randomness must be
        // seeded as it was when the decision was made.
        let expected: [u8; 32] = Sha256::digest("acct-7\u{0}evt-42").into();
        assert_eq!(evaluation_seed("acct-7", "evt-42"), expected);
        assert_ne!(
            evaluation_seed("acct-7", "evt-42"),
            evaluation_seed("acct-7e", "vt-42")
        );
    }

    fn tags(names: &[&str]) -> Vec<Text> {
        names.iter().map(|n| Text::new(n)).collect()
    }

    #[test]
    fn merged_tags_keep_the_first_seen_order_and_appear_once() {
        let mut set = TagSet::default();
        set.extend(tags(&["hipaa", "sox", "hipaa"]));
        set.extend(tags(&["renewal-window", "sox"]));
        assert_eq!(set.into_vec(), tags(&["hipaa", "sox", "renewal-window"]));
    }

    #[test]
    fn a_first_verdicts_declared_tags_are_taken_as_they_are_and_later_ones_merged() {
        let mut set = TagSet::default();
        set.extend_from(tags(&["sox", "hipaa"]), TagsOf::Declared);
        set.extend_from(tags(&["hipaa", "pci-dss"]), TagsOf::Declared);
        set.extend_from(tags(&["pci-dss", "sox", "audit"]), TagsOf::Listed);
        assert_eq!(set.into_vec(), tags(&["sox", "hipaa", "pci-dss", "audit"]));

        // Listed tags may repeat, even in a first verdict.
        let mut set = TagSet::default();
        set.extend_from(tags(&["sox", "sox"]), TagsOf::Listed);
        assert_eq!(set.into_vec(), tags(&["sox"]));
    }

    #[test]
    fn many_tags_are_still_merged_once_in_order() {
        let many: Vec<Text> = (0..40)
            .map(|i| Text::from(format!("t{}", i % 25)))
            .collect();
        let mut set = TagSet::default();
        set.extend(many.clone());
        set.extend(many);
        let expected: Vec<Text> = (0..25).map(|i| Text::from(format!("t{i}"))).collect();
        assert_eq!(set.into_vec(), expected);
    }
}
