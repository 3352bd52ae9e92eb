//! The canary run a candidate version must pass before it is deployed: the
//! plugin set it would join, run over a small generated portfolio, and the
//! candidate's condition or action export called on a fixture signal. Any
//! trap, limit hit or rejected output of the candidate refuses it; domain
//! errors (`insufficient-data`, …) are answers, not faults.

use std::sync::Arc;

use crate::demo::{GeneratedAccount, generate_portfolio};
use crate::history::MetricHistory;
use crate::pipeline::{AccountState, Pipeline, PluginSet};
use crate::runtime::bindings::types::{Context, PluginKind, Severity};
use crate::runtime::{CallInput, InvocationRecord, Plugin};
use crate::runtime::{Signal, Verdict};

/// Accounts in the canary portfolio.
const ACCOUNTS: usize = 4;

/// Events per account run through the candidate (the newest ones).
const EVENTS_PER_ACCOUNT: usize = 24;

/// The portfolio every canary runs over (generated once).
#[derive(Debug)]
pub struct Fixtures {
    accounts: Vec<GeneratedAccount>,
}

impl Default for Fixtures {
    fn default() -> Self {
        let accounts = generate_portfolio(ACCOUNTS, 0x5eed)
            .into_iter()
            .map(|mut generated| {
                let keep = generated.events.len().saturating_sub(EVENTS_PER_ACCOUNT);
                generated.events.drain(..keep);
                generated
            })
            .collect();
        Self { accounts }
    }
}

/// Runs `candidate` over the fixtures beside `others` (the set it would
/// join, without its own name's current version). The first fault of the
/// candidate, described, if any.
pub fn run(fixtures: &Fixtures, candidate: &Arc<Plugin>, others: &PluginSet) -> Result<(), String> {
    let span = tracing::debug_span!("vigil.plugins.canary", plugin = candidate.label());
    let _entered = span.enter();
    let set = PluginSet::new(
        others
            .iter()
            .filter(|p| p.name() != candidate.name())
            .cloned()
            .chain([candidate.clone()]),
    );
    let pipeline = Pipeline::new(set);
    let mine = |record: &InvocationRecord| *record.plugin.digest == *candidate.digest();
    let fault = |record: &InvocationRecord| {
        format!(
            "the canary run's {} call on fixture data ended with {}",
            record.call, record.outcome
        )
    };
    for generated in &fixtures.accounts {
        let mut state = AccountState::new(generated.account.clone());
        for event in &generated.events {
            let Ok(evaluation) = pipeline.process(&mut state, event) else {
                continue;
            };
            if let Some(record) = evaluation
                .invocations
                .iter()
                .find(|r| mine(r) && r.outcome.is_fault())
            {
                return Err(fault(record));
            }
        }
    }
    // A condition or action is called only for signals the set's triggers
    // raise; call it directly on a fixture signal too.
    let kind = candidate.kind();
    if matches!(kind, PluginKind::Condition | PluginKind::Action) {
        let signal = Signal {
            name: "health.critical".into(),
            severity: Severity::High,
            reason: "canary fixture: health 25 is below 30".into(),
            dedup_key: "canary/health.critical".into(),
            cooldown_secs: 0,
        };
        for generated in &fixtures.accounts {
            let Some(event) = generated.events.last() else {
                continue;
            };
            let ctx = Context {
                account: generated.account.clone(),
                event: event.clone(),
                now: event.occurred_at,
                scores: Vec::new(),
            };
            let mut history = MetricHistory::default();
            let input = CallInput {
                now: event.occurred_at,
                seed: [0x5e; 32],
                history: &mut history,
            };
            let record = if kind == PluginKind::Condition {
                candidate.check(input, &ctx, &signal).record
            } else {
                let verdict = Verdict {
                    applies: true,
                    reason: "canary fixture".into(),
                    policy_tags: Vec::new(),
                };
                candidate.plan(input, &ctx, &signal, &verdict).record
            };
            if record.outcome.is_fault() {
                return Err(fault(&record));
            }
        }
    }
    Ok(())
}
