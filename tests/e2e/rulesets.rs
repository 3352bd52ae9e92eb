//! Contract 0.7's rulesets: one `rule` call an event scores the account,
//! raises signals and gives the ruleset's verdict on each, and the
//! pipeline takes them as a scorer's cards, a trigger's signals and one
//! more condition's verdicts (`tests/components/v07-ruleset`, written
//! without the SDK).

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_host::pipeline::{AccountState, Disposition, Evaluation, Pipeline, PluginSet};
use vigil_host::runtime::bindings::types::{Event, Industry, IntentKind, PluginKind, Rag, Tier};
use vigil_host::runtime::{InstanceMode, Outcome, Plugin};

use crate::support::*;

/// The ruleset, configured with `config`.
fn ruleset_with(config: &[(&str, &str)]) -> Arc<Plugin> {
    let config = config
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect::<BTreeMap<_, _>>();
    Arc::new(
        runtime()
            .load(&component("v07-ruleset"), config, InstanceMode::Warm)
            .unwrap(),
    )
}

/// One account: `seats` licensed, `active` of them active.
struct Seats<'a> {
    id: &'a str,
    tier: Tier,
    seats: u32,
    active: u32,
}

/// An account of 10 seats, `active` of them active.
fn seats(id: &str, tier: Tier, active: u32) -> Seats<'_> {
    Seats {
        id,
        tier,
        seats: 10,
        active,
    }
}

impl Seats<'_> {
    /// A fresh state of the account.
    fn state(&self) -> AccountState {
        AccountState::new(account(
            self.id,
            self.tier,
            Industry::Technology,
            self.seats,
            self.active,
        ))
    }
}

/// Runs one `kind` event for each account through `pipeline`, in one
/// batch, after the `before` events of each account (alone, in order),
/// every event with one login.
fn evaluate(
    pipeline: &Pipeline,
    accounts: &[Seats<'_>],
    before: &[&str],
    kind: &str,
) -> Vec<Evaluation> {
    evaluate_with(
        pipeline,
        accounts,
        before,
        kind,
        serde_json::json!({ "logins": 1 }),
    )
}

/// [`evaluate`], every event with `payload`.
fn evaluate_with(
    pipeline: &Pipeline,
    accounts: &[Seats<'_>],
    before: &[&str],
    kind: &str,
    payload: serde_json::Value,
) -> Vec<Evaluation> {
    let mut states: Vec<AccountState> = accounts.iter().map(Seats::state).collect();
    for (state, seats) in states.iter_mut().zip(accounts) {
        for (n, kind) in before.iter().enumerate() {
            let earlier = event(seats.id, n, kind, NOW - 1000, payload.clone());
            pipeline.process(state, &earlier).unwrap();
        }
    }
    let events: Vec<Event> = accounts
        .iter()
        .map(|a| event(a.id, 99, kind, NOW, payload.clone()))
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    pipeline
        .process_batch(&mut batch)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Each signal's name and what became of it, in short.
fn settled(evaluation: &Evaluation) -> Vec<(String, String)> {
    evaluation
        .signals
        .iter()
        .map(|record| {
            let what = match &record.disposition {
                Disposition::Acted { policy_tags } => format!(
                    "acted [{}]",
                    policy_tags
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Disposition::NotApplicable { reason } => format!("not applicable: {reason}"),
                Disposition::Suppressed { .. } => "suppressed".into(),
                Disposition::ActionFailed { reason } => format!("action failed: {reason}"),
            };
            (record.signal.name.to_string(), what)
        })
        .collect()
}

fn pair(name: &str, what: &str) -> (String, String) {
    (name.to_string(), what.to_string())
}

#[test]
fn a_contract_0_7_ruleset_loads_as_a_ruleset_and_declares_its_score_tags_and_window() {
    let runtime = runtime();
    let report = runtime.inspect(&component("v07-ruleset"));
    assert!(report.loads(), "{:?}", report.refused);
    assert_eq!(report.contract.as_deref(), Some("0.7.0"));
    assert_eq!(report.world.as_deref(), Some("ruleset"));
    assert!(
        report
            .exports
            .iter()
            .any(|e| e == "vigil:plugin/ruling@0.7.0"),
        "{:?}",
        report.exports
    );
    assert_eq!(
        report.policy_tags,
        ["csm-outreach", "executive-notification"]
    );
    assert_eq!(report.scores.len(), 1);
    assert_eq!(report.scores[0].name, "seat-score");
    let plugin = load(&runtime, &component("v07-ruleset")).unwrap();
    assert_eq!(plugin.kind(), PluginKind::Ruleset);
    assert_eq!(plugin.contract(), "0.7.0");
    assert_eq!(plugin.windows().len(), 1);
}

#[test]
fn a_ruleset_scores_raises_and_checks_each_event_in_one_call() {
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[])]));
    let accounts = [
        seats("mid", Tier::MidMarket, 3),
        seats("big", Tier::Enterprise, 2),
        seats("small", Tier::SmallBusiness, 1),
        seats("busy", Tier::MidMarket, 8),
    ];
    let evaluations = evaluate(&pipeline, &accounts, &[], "usage.daily");
    for evaluation in &evaluations {
        // One call an event, recorded once: the scores, the signals and
        // the verdicts came from it.
        let calls: Vec<&str> = evaluation.invocations.iter().map(|r| r.call).collect();
        assert_eq!(calls, ["rule"], "{}", evaluation.account_id);
        assert_eq!(evaluation.invocations[0].outcome, Outcome::Ok);
    }
    let card = |at: usize| {
        let card = &evaluations[at].scores[0].card;
        (card.name.as_str(), card.value, card.band.as_str(), card.rag)
    };
    assert_eq!(card(0), ("seat-score", 30.0, "low", Rag::Red));
    assert_eq!(card(3), ("seat-score", 80.0, "high", Rag::Green));
    assert_eq!(evaluations[0].scores[0].card.factors[0].name, "seats");
    assert_eq!(
        settled(&evaluations[0]),
        [pair("seats.low", "acted [csm-outreach]")]
    );
    assert_eq!(
        settled(&evaluations[1]),
        [pair(
            "seats.low",
            "acted [csm-outreach, executive-notification]"
        )]
    );
    assert_eq!(
        settled(&evaluations[2]),
        [pair(
            "seats.low",
            "not applicable: v07-ruleset: self-service first"
        )]
    );
    assert!(evaluations[3].signals.is_empty());
    // The score is the account's, as a scorer's would be, and in its
    // history.
    let mut state = AccountState::new(account("mid", Tier::MidMarket, Industry::Technology, 10, 3));
    pipeline
        .process(
            &mut state,
            &event("mid", 0, "usage.daily", NOW, serde_json::json!({})),
        )
        .unwrap();
    assert_eq!(state.scores["seat-score"].card.value, 30.0);
    assert_eq!(state.history.window("seat-score", NOW, 1, 0).last, 30.0);
}

#[test]
fn every_condition_checks_a_rulesets_signals_beside_its_own_verdict_and_every_action_plans_them() {
    let runtime = runtime();
    let standard_plugin = |name: &str| Arc::new(load(&runtime, standard(name)).unwrap());
    let pipeline = Pipeline::new(PluginSet::new([
        ruleset_with(&[]),
        standard_plugin("tier-conditions"),
        standard_plugin("escalation-actions"),
    ]));
    let accounts = [
        seats("mid", Tier::MidMarket, 3),
        seats("small", Tier::SmallBusiness, 1),
    ];
    let evaluations = evaluate(&pipeline, &accounts, &[], "usage.daily");
    let calls: Vec<(&str, &str)> = evaluations[0]
        .invocations
        .iter()
        .map(|r| (r.plugin.name.as_ref(), r.call))
        .collect();
    assert_eq!(
        calls,
        [
            ("v07-ruleset", "rule"),
            ("tier-conditions", "check"),
            ("escalation-actions", "plan")
        ]
    );
    // The condition's tags first, then the ruleset's own.
    match &evaluations[0].signals[0].disposition {
        Disposition::Acted { policy_tags } => {
            let tags: Vec<&str> = policy_tags.iter().map(|t| t.as_str()).collect();
            assert_eq!(tags.last(), Some(&"csm-outreach"), "{tags:?}");
            assert!(tags.len() > 1, "{tags:?}");
        }
        other => panic!("expected the signal acted on, got {other:?}"),
    }
    // `seats.low` is high: the standard action escalates it by severity.
    assert!(
        evaluations[0]
            .intents
            .iter()
            .any(|planned| &*planned.plugin.name == "escalation-actions"
                && matches!(planned.intent.kind, IntentKind::Escalate(_))),
        "{:?}",
        evaluations[0].intents
    );
    // The ruleset's own verdict refuses the small business's signal,
    // whatever the condition says: nothing is planned.
    match &evaluations[1].signals[0].disposition {
        Disposition::NotApplicable { reason } => {
            assert!(
                reason.contains("v07-ruleset: self-service first"),
                "{reason}"
            )
        }
        other => panic!("expected the signal not applicable, got {other:?}"),
    }
    assert!(evaluations[1].intents.is_empty());
}

#[test]
fn a_triggers_signals_are_settled_before_a_rulesets_on_the_same_event() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([
        ruleset_with(&[]),
        Arc::new(load(&runtime, standard("usage-triggers")).unwrap()),
    ]));
    let accounts = [
        // 1 seat of 10 active: low usage to the trigger, low seats to
        // the ruleset (whose own verdict refuses it for a small business).
        seats("small", Tier::SmallBusiness, 1),
        // 8 of 10: neither raises anything.
        seats("busy", Tier::MidMarket, 8),
    ];
    let evaluations = evaluate(&pipeline, &accounts, &[], "usage.daily");
    let calls = |at: usize| -> Vec<(String, &str)> {
        evaluations[at]
            .invocations
            .iter()
            .map(|r| (r.plugin.name.to_string(), r.call))
            .collect()
    };
    for at in 0..accounts.len() {
        assert_eq!(
            calls(at),
            [
                ("v07-ruleset".to_string(), "rule"),
                ("usage-triggers".to_string(), "evaluate")
            ]
        );
    }
    assert_eq!(
        settled(&evaluations[0]),
        [
            pair("usage.low", "acted []"),
            pair(
                "seats.low",
                "not applicable: v07-ruleset: self-service first"
            )
        ]
    );
    assert!(evaluations[1].signals.is_empty());
}

#[test]
fn a_failing_ruling_keeps_the_rulesets_last_good_score_stale_and_raises_nothing() {
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[])]));
    let accounts = [seats("mid", Tier::MidMarket, 3)];
    let evaluations = evaluate(&pipeline, &accounts, &["usage.daily"], "ruleset.fail");
    let evaluation = &evaluations[0];
    assert!(evaluation.signals.is_empty());
    assert_eq!(evaluation.scores.len(), 1);
    assert!(evaluation.scores[0].stale);
    assert_eq!(evaluation.scores[0].card.value, 30.0);
    match &evaluation.invocations[0].outcome {
        Outcome::PluginError { kind, message } => assert_eq!(
            (kind.as_str(), message.as_str()),
            ("insufficient-data", "no seats yet")
        ),
        other => panic!("expected the plugin error, got {other:?}"),
    }
}

#[test]
fn a_malformed_ruling_is_refused_for_its_item_alone() {
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[])]));
    let low = |id| Seats {
        id,
        tier: Tier::MidMarket,
        seats: 10,
        active: 3,
    };
    let accounts = [
        low("first"),
        low("unjudged"),
        low("double"),
        low("failing"),
        low("last"),
    ];
    let evaluations = evaluate(&pipeline, &accounts, &[], "usage.daily");
    for at in [0, 4] {
        assert_eq!(evaluations[at].invocations[0].outcome, Outcome::Ok);
        assert_eq!(
            settled(&evaluations[at]),
            [pair("seats.low", "acted [csm-outreach]")]
        );
    }
    for (at, expected) in [(1, "verdicts"), (2, "two cards of the score 0")] {
        assert!(evaluations[at].signals.is_empty());
        assert!(evaluations[at].scores.is_empty());
        match &evaluations[at].invocations[0].outcome {
            Outcome::InvalidOutput { reason } => assert!(reason.contains(expected), "{reason}"),
            other => panic!("expected the ruling refused, got {other:?}"),
        }
    }
    assert!(matches!(
        evaluations[3].invocations[0].outcome,
        Outcome::PluginError { .. }
    ));
}

#[test]
fn a_ruling_naming_a_policy_tag_it_never_declared_is_refused_for_its_item_alone() {
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[])]));
    // No login in the window: both accounts raise `logins.none`, and
    // `untagged`'s verdict on it names tag 5, which is not declared.
    let accounts = [
        seats("untagged", Tier::MidMarket, 8),
        seats("fine", Tier::MidMarket, 8),
    ];
    let evaluations = evaluate_with(
        &pipeline,
        &accounts,
        &[],
        "usage.daily",
        serde_json::json!({}),
    );
    match &evaluations[0].invocations[0].outcome {
        Outcome::InvalidOutput { reason } => {
            assert!(reason.contains("names policy tag 5"), "{reason}")
        }
        other => panic!("expected the ruling refused, got {other:?}"),
    }
    assert_eq!(settled(&evaluations[1]), [pair("logins.none", "acted []")]);
}

#[test]
fn a_rulesets_repeated_dedup_key_is_settled_after_the_first_with_its_own_verdict() {
    // Without a cooldown both are settled; the second alone, after the
    // first, still with the ruleset's verdict on it.
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[])]));
    let accounts = [
        seats("twice-small", Tier::SmallBusiness, 1),
        seats("twice-mid", Tier::MidMarket, 1),
    ];
    let evaluations = evaluate(&pipeline, &accounts, &[], "usage.daily");
    let refused = pair(
        "seats.low",
        "not applicable: v07-ruleset: self-service first",
    );
    assert_eq!(settled(&evaluations[0]), [refused.clone(), refused]);
    let acted = pair("seats.low", "acted [csm-outreach]");
    assert_eq!(settled(&evaluations[1]), [acted.clone(), acted]);
    // With a cooldown, an earlier event's first signal puts the key on
    // it: both of the next event's are suppressed.
    let pipeline = Pipeline::new(PluginSet::new([ruleset_with(&[("cooldown", "3600")])]));
    let evaluations = evaluate(&pipeline, &accounts[1..], &["usage.daily"], "usage.daily");
    assert_eq!(
        settled(&evaluations[0]),
        [
            pair("seats.low", "suppressed"),
            pair("seats.low", "suppressed")
        ]
    );
}

#[test]
fn a_batch_of_ruleset_events_is_evaluated_as_each_event_alone() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([
        ruleset_with(&[]),
        Arc::new(load(&runtime, standard("tier-conditions")).unwrap()),
        Arc::new(load(&runtime, standard("escalation-actions")).unwrap()),
    ]));
    let tiers = [Tier::Enterprise, Tier::MidMarket, Tier::SmallBusiness];
    let ids: Vec<String> = (0..9).map(|n| format!("twice-{n}")).collect();
    let accounts: Vec<Seats<'_>> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| Seats {
            id,
            tier: tiers[n % 3],
            seats: 10,
            active: (n as u32) % 7,
        })
        .collect();
    let batched = evaluate(&pipeline, &accounts, &[], "usage.daily");
    for (seats, batched) in accounts.iter().zip(batched) {
        let mut state = seats.state();
        let alone = pipeline
            .process(
                &mut state,
                &event(
                    seats.id,
                    99,
                    "usage.daily",
                    NOW,
                    serde_json::json!({ "logins": 1 }),
                ),
            )
            .unwrap();
        let comparable = |mut evaluation: Evaluation| {
            // Durations vary, and so does the fuel of the guest's glue
            // around an item (lifting the batch, the loop).
            for record in &mut evaluation.invocations {
                record.duration_us = 0;
                record.fuel_used = 0;
            }
            evaluation
        };
        assert_eq!(comparable(batched), comparable(alone), "{}", seats.id);
    }
}
