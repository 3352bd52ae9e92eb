//! The pipeline end to end: scorers → triggers → policy → conditions →
//! actions, with the fail policy of each kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_host::history::DAY_MS;
use vigil_host::pipeline::{AccountState, Disposition, Pipeline, PipelineError, PluginSet};
use vigil_host::runtime::bindings::types::{
    Account, EscalationLevel, Event, Industry, IntentKind, Tier,
};
use vigil_host::runtime::{InstanceMode, Limits, Outcome, Plugin, Runtime};

use crate::support::{
    NOW, account, component, event, run_events, runtime, standard, standard_pipeline, usage_history,
};

fn plugin(runtime: &Runtime, bytes: &[u8]) -> Arc<Plugin> {
    Arc::new(
        runtime
            .load(bytes, BTreeMap::new(), InstanceMode::Warm)
            .unwrap(),
    )
}

/// An enterprise account in financial services whose usage and logins
/// collapse over weeks, then a payment 75 days overdue.
fn collapsing_enterprise_account() -> (Account, Vec<Event>) {
    let customer = account(
        "acme",
        Tier::Enterprise,
        Industry::FinancialServices,
        400,
        360,
    );
    let mut events = usage_history("acme", (360.0, 8.0), (2500.0, 40.0));
    events.push(event(
        "acme",
        99,
        "payment.overdue",
        NOW,
        serde_json::json!({"payment_days_overdue": 75}),
    ));
    (customer, events)
}

#[test]
fn a_collapsing_enterprise_account_ends_critical_with_a_leadership_escalation() {
    let runtime = runtime();
    let pipeline = standard_pipeline(&runtime, InstanceMode::Warm);
    let (customer, events) = collapsing_enterprise_account();
    let (state, evaluations) = run_events(&pipeline, customer, &events);

    let health = &state.scores["health"];
    assert_eq!(health.card.band, "critical", "{}", health.card.value);
    assert!(!health.stale);
    assert_eq!(&*health.plugin.name, "health-score");
    let intents: Vec<_> = evaluations.iter().flat_map(|e| &e.intents).collect();
    assert!(intents.iter().any(
        |p| matches!(&p.intent.kind, IntentKind::Escalate(e) if e.level == EscalationLevel::L3)
    ));
    assert!(
        intents
            .iter()
            .any(|p| matches!(p.intent.kind, IntentKind::Freeze(_)))
    );
    // Every invocation is recorded with plugin, version, digest and fuel.
    let records: Vec<_> = evaluations.iter().flat_map(|e| &e.invocations).collect();
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.fuel_used > 0 && r.plugin.digest.len() == 64)
    );
}

#[test]
fn the_standard_plugins_run_on_fresh_instances_within_the_memory_they_start_with() {
    // The SDK's allocator starts with a heap in the plugin's initial
    // memory, so a call on a fresh instance (a replay) does not grow it:
    // with the cap at the initial memory, any growth would be refused and
    // the call would end at the memory limit.
    let inspecting = runtime();
    let initial = vigil_host::standard::STANDARD_PLUGINS
        .iter()
        .map(|(name, bytes)| {
            let report = inspecting.inspect(bytes);
            assert_eq!(report.memories, Some(1), "{name}");
            report.initial_memory_bytes.unwrap()
        })
        .max()
        .unwrap();
    let runtime = Runtime::new(Limits {
        memory_bytes: usize::try_from(initial).unwrap(),
        ..Limits::default()
    })
    .unwrap();
    let pipeline = standard_pipeline(&runtime, InstanceMode::Fresh);
    let (customer, events) = collapsing_enterprise_account();
    let (state, evaluations) = run_events(&pipeline, customer, &events);

    let records: Vec<_> = evaluations.iter().flat_map(|e| &e.invocations).collect();
    for record in &records {
        assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
    }
    for kind in ["score", "evaluate", "check", "plan"] {
        assert!(records.iter().any(|r| r.call == kind), "a {kind} call ran");
    }
    assert_eq!(state.scores["health"].card.band, "critical");
    assert!(evaluations.iter().any(|e| !e.intents.is_empty()));
}

#[test]
fn a_signal_on_cooldown_is_suppressed_and_an_intent_key_is_planned_once() {
    let runtime = runtime();
    let pipeline = standard_pipeline(&runtime, InstanceMode::Warm);
    let customer = account("acme", Tier::MidMarket, Industry::Technology, 100, 0);
    let events: Vec<_> = (0..3)
        .map(|n| {
            event(
                "acme",
                n,
                "usage.daily",
                NOW + n as i64 * 3_600_000,
                serde_json::json!({"active_users": 0}),
            )
        })
        .collect();
    let (_, evaluations) = run_events(&pipeline, customer, &events);
    let dispositions = |name: &str| -> Vec<bool> {
        evaluations
            .iter()
            .flat_map(|e| &e.signals)
            .filter(|s| s.signal.name == name)
            .map(|s| matches!(s.disposition, Disposition::Suppressed { .. }))
            .collect()
    };
    assert_eq!(
        dispositions("usage.none"),
        [false, true, true],
        "24 h cooldown"
    );
    let keys: Vec<_> = evaluations
        .iter()
        .flat_map(|e| &e.intents)
        .map(|p| &p.intent.idempotency_key)
        .collect();
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(keys.len(), unique.len());
}

#[test]
fn a_failing_scorer_keeps_the_last_good_score_flagged_stale() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([plugin(&runtime, &component("panicker"))]));
    let mut state = AccountState::new(account(
        "acme",
        Tier::MidMarket,
        Industry::Technology,
        10,
        5,
    ));
    let first = pipeline
        .process(
            &mut state,
            &event("acme", 1, "usage.daily", NOW, serde_json::json!({})),
        )
        .unwrap();
    assert!(!first.scores[0].stale);
    let failed = pipeline
        .process(
            &mut state,
            &event("acme", 2, "test.boom", NOW + DAY_MS, serde_json::json!({})),
        )
        .unwrap();
    assert!(matches!(
        failed.invocations[0].outcome,
        Outcome::Trap { .. }
    ));
    assert!(failed.scores[0].stale);
    assert_eq!(
        failed.scores[0].card.value, 50.0,
        "the last good value is kept"
    );
    assert!(state.scores["health"].stale);
    let recovered = pipeline
        .process(
            &mut state,
            &event(
                "acme",
                3,
                "usage.daily",
                NOW + 2 * DAY_MS,
                serde_json::json!({}),
            ),
        )
        .unwrap();
    assert!(!recovered.scores[0].stale);
    assert!(!state.scores["health"].stale);
}

#[test]
fn a_failing_action_emits_nothing_while_the_other_actions_go_on() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([
        plugin(&runtime, standard("usage-triggers")),
        plugin(&runtime, &component("broken-action")),
        plugin(&runtime, standard("escalation-actions")),
    ]));
    let mut state = AccountState::new(account(
        "acme",
        Tier::MidMarket,
        Industry::Technology,
        100,
        0,
    ));
    let evaluation = pipeline
        .process(
            &mut state,
            &event(
                "acme",
                1,
                "usage.daily",
                NOW,
                serde_json::json!({"active_users": 0}),
            ),
        )
        .unwrap();
    let broken: Vec<_> = evaluation
        .invocations
        .iter()
        .filter(|r| r.plugin.name == "broken-action")
        .collect();
    assert!(!broken.is_empty());
    assert!(
        broken
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Trap { .. }))
    );
    assert!(!evaluation.intents.is_empty());
    assert!(
        evaluation
            .intents
            .iter()
            .all(|p| &*p.plugin.name == "escalation-actions")
    );
}

#[test]
fn a_playbook_checks_and_plans_its_own_signals() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([plugin(
        &runtime,
        &component("audit-playbook"),
    )]));
    let bank = account("bank", Tier::MidMarket, Industry::FinancialServices, 50, 40);
    let events = [event(
        "bank",
        1,
        "payment.overdue",
        NOW,
        serde_json::json!({"payment_days_overdue": 45}),
    )];
    let (_, evaluations) = run_events(&pipeline, bank, &events);
    let signal = &evaluations[0].signals[0];
    assert_eq!(signal.signal.name, "sox.overdue-invoice");
    assert_eq!(
        signal.disposition,
        Disposition::Acted {
            policy_tags: vec!["sox".into()]
        }
    );
    let intent = &evaluations[0].intents[0];
    assert!(
        matches!(&intent.intent.kind, IntentKind::Task(t) if t.title == "Audit-trail review" && t.due_at == NOW + 3_600_000)
    );

    let shop = account("shop", Tier::MidMarket, Industry::ECommerce, 50, 40);
    let events = [event(
        "shop",
        1,
        "payment.overdue",
        NOW,
        serde_json::json!({"payment_days_overdue": 45}),
    )];
    let (_, evaluations) = run_events(&pipeline, shop, &events);
    assert!(evaluations[0].signals.is_empty());
}

#[test]
fn an_event_for_another_account_or_with_a_non_object_payload_is_rejected() {
    let runtime = runtime();
    let pipeline = standard_pipeline(&runtime, InstanceMode::Warm);
    let mut state = AccountState::new(account(
        "acme",
        Tier::MidMarket,
        Industry::Technology,
        10,
        5,
    ));
    let wrong = pipeline.process(
        &mut state,
        &event("globex", 1, "usage.daily", NOW, serde_json::json!({})),
    );
    assert!(matches!(wrong, Err(PipelineError::WrongAccount { .. })));
    let mut not_object = event("acme", 2, "usage.daily", NOW, serde_json::json!({}));
    not_object.payload = "[1, 2]".into();
    assert!(matches!(
        pipeline.process(&mut state, &not_object),
        Err(PipelineError::InvalidPayload { .. })
    ));
    not_object.payload = "{not json".into();
    assert!(matches!(
        pipeline.process(&mut state, &not_object),
        Err(PipelineError::InvalidPayload { .. })
    ));
    assert!(
        state.history.is_empty(),
        "nothing recorded from a rejected event"
    );
}

#[test]
fn when_every_action_fails_the_signal_is_not_put_on_cooldown() {
    let runtime = runtime();
    let pipeline = Pipeline::new(PluginSet::new([
        plugin(&runtime, standard("usage-triggers")),
        plugin(&runtime, &component("broken-action")),
    ]));
    let mut state = AccountState::new(account(
        "acme",
        Tier::MidMarket,
        Industry::Technology,
        100,
        0,
    ));
    for n in 0..2 {
        let evaluation = pipeline
            .process(
                &mut state,
                &event(
                    "acme",
                    n,
                    "usage.daily",
                    NOW + n as i64 * 60_000,
                    serde_json::json!({"active_users": 0}),
                ),
            )
            .unwrap();
        let none = evaluation
            .signals
            .iter()
            .find(|s| s.signal.name == "usage.none")
            .unwrap();
        assert!(
            matches!(&none.disposition, Disposition::ActionFailed { reason } if reason.contains("broken-action")),
            "event {n}: {:?}",
            none.disposition
        );
        assert!(evaluation.intents.is_empty());
    }
}
