//! The evaluation pipeline: an event for an account runs through scorers,
//! triggers, the host's dedup and cooldown policy, conditions and actions,
//! and comes out as intents plus one record per plugin invocation.
//!
//! Fail policy: a failing scorer leaves the account's last good score in
//! place, flagged stale (fail open); a failing trigger emits no signal; a
//! failing condition means the signal does not apply and a failing action
//! plans nothing (fail closed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::history::MetricHistory;
use crate::runtime::bindings::types::{
    Account, Context, Event, Intent, PluginKind, ScoreCard, ScoreSummary, Signal, Verdict,
};
use crate::runtime::{CallInput, Invocation, InvocationRecord, Plugin};

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

/// Which plugin version produced something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginRef {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The component's digest.
    pub digest: String,
}

impl From<&Plugin> for PluginRef {
    fn from(plugin: &Plugin) -> Self {
        Self {
            name: plugin.name().to_string(),
            version: plugin.info().version.clone(),
            digest: plugin.digest().to_string(),
        }
    }
}

/// An account's current score from one scorer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreState {
    /// The card.
    pub card: ScoreCard,
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
    pub fn record_event(&mut self, kind: &str, at: i64, payload: &serde_json::Value) {
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
            name: s.card.name.clone(),
            value: s.card.value,
            band: s.card.band.clone(),
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
        policy_tags: Vec<String>,
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
    /// The trigger or playbook that raised it.
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
    pub signal: String,
    /// The intent.
    pub intent: Intent,
}

/// The result of evaluating one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The event.
    pub event_id: String,
    /// The account.
    pub account_id: String,
    /// The evaluation time.
    pub now: i64,
    /// Scores, one per scorer that ran: fresh, or the last good one
    /// flagged stale when the scorer failed.
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
            }
        }
        for group in [
            &mut set.scorers,
            &mut set.triggers,
            &mut set.conditions,
            &mut set.actions,
            &mut set.playbooks,
        ] {
            group.sort_by(|a, b| a.name().cmp(b.name()).then(a.digest().cmp(b.digest())));
        }
        set
    }

    /// Every plugin, scorers first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.scorers
            .iter()
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
        let mut seed = self.seed;
        for (byte, digest_byte) in seed.iter_mut().zip(plugin.digest().bytes()) {
            *byte ^= digest_byte;
        }
        CallInput {
            now: self.now,
            seed,
            history,
        }
    }
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
        if event.account_id != state.account.id {
            return Err(PipelineError::WrongAccount {
                event: event.id.clone(),
                event_account: event.account_id.clone(),
                account: state.account.id.clone(),
            });
        }
        let payload: serde_json::Value =
            serde_json::from_str(&event.payload).map_err(|e| PipelineError::InvalidPayload {
                event: event.id.clone(),
                reason: e.to_string(),
            })?;
        if !payload.is_object() {
            return Err(PipelineError::InvalidPayload {
                event: event.id.clone(),
                reason: "expected an object".into(),
            });
        }

        let now = event.occurred_at;
        state.record_event(&event.kind, now, &payload);

        let plugins = self.plugins.load_full();
        let seed: [u8; 32] =
            Sha256::digest(format!("{}\u{0}{}", event.account_id, event.id)).into();
        let mut evaluation = Evaluation {
            event_id: event.id.clone(),
            account_id: event.account_id.clone(),
            now,
            scores: Vec::new(),
            signals: Vec::new(),
            intents: Vec::new(),
            invocations: Vec::new(),
        };

        // Scorers see no scores; everything after sees the fresh ones.
        let mut ctx = Context {
            account: state.account.clone(),
            event: event.clone(),
            now,
            scores: Vec::new(),
        };
        self.run_scorers(&plugins, state, &ctx, seed, &mut evaluation);
        ctx.scores = fresh_summaries(&evaluation.scores);
        let call = Call {
            now,
            seed,
            ctx: &ctx,
        };

        // Triggers' signals go to every condition and action; a playbook's
        // are also checked by, and planned by, the playbook itself.
        let sources = plugins
            .triggers
            .iter()
            .map(|trigger| (trigger, None))
            .chain(
                plugins
                    .playbooks
                    .iter()
                    .map(|playbook| (playbook, Some(playbook))),
            );
        for (source, playbook) in sources {
            if !source.subscribes_to(&event.kind) {
                continue;
            }
            let invocation = source.evaluate(call.input(source, &mut state.history), &ctx);
            let signals = record(&mut evaluation, invocation).unwrap_or_default();
            for signal in signals {
                self.act_on(
                    &plugins,
                    state,
                    &call,
                    source,
                    playbook,
                    signal,
                    &mut evaluation,
                );
            }
        }
        state
            .intent_keys
            .retain(|_, at| *at > now.saturating_sub(INTENT_KEY_RETENTION_MS));
        state.cooldowns.retain(|_, until| *until > now);
        Ok(evaluation)
    }

    fn run_scorers(
        &self,
        plugins: &PluginSet,
        state: &mut AccountState,
        ctx: &Context,
        seed: [u8; 32],
        evaluation: &mut Evaluation,
    ) {
        let call = Call {
            now: ctx.now,
            seed,
            ctx,
        };
        for scorer in &plugins.scorers {
            if !scorer.subscribes_to(&ctx.event.kind) {
                continue;
            }
            let invocation = scorer.score(call.input(scorer, &mut state.history), call.ctx);
            match record(evaluation, invocation) {
                Some(card) => {
                    state.history.record(&card.name, ctx.now, card.value);
                    let score = ScoreState {
                        card,
                        plugin: PluginRef::from(scorer.as_ref()),
                        computed_at: ctx.now,
                        stale: false,
                    };
                    state.scores.insert(score.card.name.clone(), score.clone());
                    evaluation.scores.push(score);
                }
                None => {
                    // Fail open: keep the last good score, flagged stale.
                    for score in state.scores.values_mut() {
                        if score.plugin.name == scorer.name() {
                            score.stale = true;
                            evaluation.scores.push(score.clone());
                        }
                    }
                }
            }
        }
    }

    /// Applies cooldown, conditions and actions to one signal. A playbook's
    /// signals are also checked by, and planned by, the playbook itself.
    #[allow(clippy::too_many_arguments)]
    fn act_on(
        &self,
        plugins: &PluginSet,
        state: &mut AccountState,
        call: &Call<'_>,
        source: &Plugin,
        playbook: Option<&Arc<Plugin>>,
        signal: Signal,
        evaluation: &mut Evaluation,
    ) {
        let plugin = PluginRef::from(source);
        // Keys are scoped to the plugin that chose them, so no plugin can
        // silence another's signals or take over its intents.
        let cooldown_key = format!("{}/{}", source.name(), signal.dedup_key);
        if let Some(until) = state
            .cooldowns
            .get(&cooldown_key)
            .copied()
            .filter(|until| *until > call.now)
        {
            evaluation.signals.push(SignalRecord {
                plugin,
                signal,
                disposition: Disposition::Suppressed { until },
            });
            return;
        }

        let mut applies = true;
        let mut reasons = Vec::new();
        let mut tags = TagSet::default();
        for condition in plugins.conditions.iter().chain(playbook) {
            let invocation =
                condition.check(call.input(condition, &mut state.history), call.ctx, &signal);
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
                        reasons.push(format!("{}: {reason}", condition.name()));
                    }
                    tags.extend(policy_tags);
                }
                None => {
                    applies = false;
                    reasons.push(format!(
                        "condition {} failed: {}",
                        condition.label(),
                        failure.unwrap_or_default()
                    ));
                }
            }
        }
        let ordered_tags = tags.into_vec();
        if !applies {
            evaluation.signals.push(SignalRecord {
                plugin,
                signal,
                disposition: Disposition::NotApplicable {
                    reason: reasons.join("; "),
                },
            });
            return;
        }

        let planners: Vec<&Arc<Plugin>> = match playbook {
            Some(playbook) => vec![playbook],
            None => plugins.actions.iter().collect(),
        };
        // The combined verdict the actions see; built when the first action
        // needs it, as it copies every tag.
        let mut verdict = None;
        let mut planned = planners.is_empty();
        let mut failures = Vec::new();
        for action in &planners {
            let verdict = verdict.get_or_insert_with(|| Verdict {
                applies: true,
                reason: "all conditions apply".into(),
                policy_tags: ordered_tags.clone(),
            });
            let invocation = action.plan(
                call.input(action, &mut state.history),
                call.ctx,
                &signal,
                verdict,
            );
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
            state
                .cooldowns
                .insert(cooldown_key, call.now.saturating_add(cooldown_ms));
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
fn whole_number(value: &serde_json::Value) -> Option<u64> {
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
    ordered: Vec<String>,
    seen: BTreeSet<String>,
}

impl TagSet {
    /// Tags up to which a linear scan is cheaper than the set.
    const SCAN: usize = 16;

    fn extend(&mut self, tags: Vec<String>) {
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

    fn into_vec(self) -> Vec<String> {
        self.ordered
    }
}

/// Keeps the invocation's record and returns its output.
fn record<R>(evaluation: &mut Evaluation, invocation: Invocation<R>) -> Option<R> {
    evaluation.invocations.push(invocation.record);
    invocation.output
}

#[cfg(test)]
mod tests {
    use super::TagSet;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_string()).collect()
    }

    #[test]
    fn merged_tags_keep_the_first_seen_order_and_appear_once() {
        let mut set = TagSet::default();
        set.extend(tags(&["hipaa", "sox", "hipaa"]));
        set.extend(tags(&["renewal-window", "sox"]));
        assert_eq!(set.into_vec(), tags(&["hipaa", "sox", "renewal-window"]));
    }

    #[test]
    fn many_tags_are_still_merged_once_in_order() {
        let many: Vec<String> = (0..40).map(|i| format!("t{}", i % 25)).collect();
        let mut set = TagSet::default();
        set.extend(many.clone());
        set.extend(many);
        let expected: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        assert_eq!(set.into_vec(), expected);
    }
}
