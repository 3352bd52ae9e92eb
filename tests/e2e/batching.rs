//! Batches (contracts 0.2 to 0.5): many accounts' events in one call per
//! plugin and stage, each evaluated exactly as it would be alone; faults
//! contained to the event they happen on; plugins built against contract
//! 0.1 still loaded and called once per event, and against 0.2 and 0.3
//! still called with their batches; the windows a plugin declares; the
//! policy tags a 0.5 plugin declares and names by bit.

use std::collections::BTreeMap;

use vigil_host::demo::{GeneratedAccount, generate_portfolio};
use vigil_host::pipeline::{AccountState, Disposition, Evaluation, Pipeline, PluginSet};
use vigil_host::runtime::bindings::types::{Event, Industry, IntentKind, Rag, Tier};
use vigil_host::runtime::{InstanceMode, LoadError, Outcome, Text};

use crate::support::*;

/// An evaluation without what varies from run to run or between a call
/// and a batch: durations, and the fuel of the guest's own glue around the
/// item (lifting the batch, the loop).
fn comparable(mut evaluation: Evaluation) -> Evaluation {
    for record in &mut evaluation.invocations {
        record.fuel_used = 0;
        record.duration_us = 0;
    }
    evaluation
}

/// Runs the portfolio's events through `pipeline` in waves — every
/// account's next event — `size` events per `process_batch`; returns each
/// account's evaluations in order, and the account states.
fn run_batched(
    pipeline: &Pipeline,
    portfolio: &[GeneratedAccount],
    size: usize,
) -> (Vec<Vec<Evaluation>>, Vec<AccountState>) {
    let mut states: Vec<AccountState> = portfolio
        .iter()
        .map(|a| AccountState::new(a.account.clone()))
        .collect();
    let mut evaluations: Vec<Vec<Evaluation>> = portfolio.iter().map(|_| Vec::new()).collect();
    let waves = portfolio.iter().map(|a| a.events.len()).max().unwrap();
    for wave in 0..waves {
        let mut due: Vec<(usize, &mut AccountState, &Event)> = states
            .iter_mut()
            .zip(portfolio)
            .enumerate()
            .filter_map(|(at, (state, a))| a.events.get(wave).map(|e| (at, state, e)))
            .collect();
        for chunk in due.chunks_mut(size) {
            let mut batch: Vec<(&mut AccountState, &Event)> = chunk
                .iter_mut()
                .map(|(_, state, event)| (&mut **state, *event))
                .collect();
            let results = pipeline.process_batch(&mut batch);
            assert_eq!(results.len(), chunk.len());
            for ((at, _, _), result) in chunk.iter().zip(results) {
                evaluations[*at].push(comparable(result.unwrap()));
            }
        }
    }
    (evaluations, states)
}

/// A mid-market account per id, each with one `login` event at `NOW`.
fn one_login_each(ids: &[String]) -> (Vec<AccountState>, Vec<Event>) {
    let states = ids
        .iter()
        .map(|id| AccountState::new(account(id, Tier::MidMarket, Industry::Technology, 10, 5)))
        .collect();
    let events = ids
        .iter()
        .map(|id| event(id, 1, "login", NOW, serde_json::json!({})))
        .collect();
    (states, events)
}

#[test]
fn a_batch_evaluates_every_event_as_it_would_be_evaluated_alone() {
    let portfolio = generate_portfolio(12, 7);
    let runtime = runtime();
    let alone = standard_pipeline(&runtime, InstanceMode::Warm);
    let batched = standard_pipeline(&runtime, InstanceMode::Warm);

    let mut expected = Vec::new();
    let mut expected_states = Vec::new();
    for account in &portfolio {
        let mut state = AccountState::new(account.account.clone());
        let evaluations: Vec<Evaluation> = account
            .events
            .iter()
            .map(|event| comparable(alone.process(&mut state, event).unwrap()))
            .collect();
        expected.push(evaluations);
        expected_states.push(state);
    }
    let (got, states) = run_batched(&batched, &portfolio, 5);

    let signals: usize = expected.iter().flatten().map(|e| e.signals.len()).sum();
    let intents: usize = expected.iter().flatten().map(|e| e.intents.len()).sum();
    assert!(
        signals > 100 && intents > 10,
        "a portfolio that exercises the stages: {signals} signals, {intents} intents"
    );
    for (account, (want, have)) in portfolio.iter().zip(expected.iter().zip(&got)) {
        assert_eq!(want.len(), have.len());
        // Each evaluation names its own event and account, alone and in a
        // batch.
        for (event, (want, have)) in account.events.iter().zip(want.iter().zip(have)) {
            for evaluation in [want, have] {
                assert_eq!(
                    (evaluation.event_id.as_str(), evaluation.account_id.as_str()),
                    (event.id.as_str(), event.account_id.as_str())
                );
            }
        }
        for (want, have) in want.iter().zip(have) {
            assert_eq!(
                want, have,
                "account {} event {}",
                account.account.id, want.event_id
            );
        }
    }
    assert_eq!(
        expected_states, states,
        "the accounts' states after the run"
    );
}

#[test]
fn actions_planning_a_batch_settle_every_signal_as_they_would_alone_even_when_one_traps() {
    // The standard plugins and an action that traps on every plan: the
    // actions' plans are made once per action over the batch's signals,
    // and each signal still gets its own plans, records and intents.
    let portfolio = generate_portfolio(10, 11);
    let runtime = runtime();
    let with_broken_action = || {
        let standard = standard_pipeline(&runtime, InstanceMode::Warm).plugins();
        let broken = load(&runtime, &component("broken-action")).unwrap();
        let plugins = standard
            .iter()
            .cloned()
            .chain([std::sync::Arc::new(broken)]);
        Pipeline::new(PluginSet::new(plugins))
    };
    let alone = with_broken_action();
    let batched = with_broken_action();

    let mut expected = Vec::new();
    for account in &portfolio {
        let mut state = AccountState::new(account.account.clone());
        for event in &account.events {
            expected.push(comparable(alone.process(&mut state, event).unwrap()));
        }
    }
    let (got, _) = run_batched(&batched, &portfolio, 7);
    let got: Vec<Evaluation> = got.into_iter().flatten().collect();
    // run_batched returns each account's evaluations in order, as above.
    assert_eq!(expected.len(), got.len());
    let mut traps = 0;
    let mut intents = 0;
    for (want, have) in expected.iter().zip(&got) {
        assert_eq!(want, have, "event {}", want.event_id);
        traps += have
            .invocations
            .iter()
            .filter(|r| {
                r.plugin.name == "broken-action" && matches!(r.outcome, Outcome::Trap { .. })
            })
            .count();
        intents += have.intents.len();
    }
    assert!(
        traps > 10 && intents > 10,
        "the failing action was asked and the others planned: {traps} traps, {intents} intents"
    );
}

#[test]
fn a_batch_larger_than_a_chunk_evaluates_every_event_as_it_would_be_evaluated_alone() {
    let runtime = runtime();
    let alone = standard_pipeline(&runtime, InstanceMode::Warm);
    let batched = standard_pipeline(&runtime, InstanceMode::Warm);
    // Two and a half chunks, so that a chunk ends inside the batch and the
    // last one is short.
    let count = 2 * vigil_host::pipeline::EVALUATION_CHUNK + 7;
    let ids: Vec<String> = (0..count).map(|n| format!("acct-{n:03}")).collect();
    let (mut alone_states, events) = one_login_each(&ids);
    let expected: Vec<Evaluation> = alone_states
        .iter_mut()
        .zip(&events)
        .map(|(state, event)| comparable(alone.process(state, event).unwrap()))
        .collect();
    let (mut states, _) = one_login_each(&ids);
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let results = batched.process_batch(&mut batch);

    assert_eq!(results.len(), count);
    for ((event, want), result) in events.iter().zip(&expected).zip(results) {
        let have = comparable(result.unwrap());
        assert_eq!(have.event_id, event.id);
        assert!(!have.scores.is_empty(), "{}", event.id);
        assert_eq!(&have, want, "{}", event.id);
    }
    for (want, have) in alone_states.iter().zip(&states) {
        assert_eq!(want.account.id, have.account.id);
        assert_eq!(want.history, have.history);
    }
}

#[test]
fn a_trap_on_one_event_of_a_batch_fails_that_event_alone() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("panicker")).unwrap();
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids = ["first", "second", "boom", "fourth", "fifth"].map(String::from);
    let (mut states, events) = one_login_each(&ids);
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let results = pipeline.process_batch(&mut batch);

    for (id, result) in ids.iter().zip(results) {
        let evaluation = result.unwrap();
        let record = &evaluation.invocations[0];
        if *id == "boom" {
            assert!(
                matches!(&record.outcome, Outcome::Trap { reason } if reason.contains("account boom is not supported")),
                "{record:?}"
            );
            assert!(evaluation.scores.is_empty());
        } else {
            assert_eq!(record.outcome, Outcome::Ok, "{id}");
            assert_eq!(evaluation.scores[0].card.value, 50.0, "{id}");
        }
    }
}

#[test]
fn a_plugin_error_on_one_item_of_a_packed_batch_is_recorded_for_that_item_alone() {
    let runtime = runtime();
    let plugin = load(&runtime, standard("health-score")).unwrap();
    assert_eq!(plugin.contract(), "0.7.0");
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids = ["first", "seatless", "third"];
    let mut states: Vec<AccountState> = ids
        .iter()
        .map(|id| {
            let seats = if *id == "seatless" { 0 } else { 10 };
            AccountState::new(account(id, Tier::MidMarket, Industry::Technology, seats, 5))
        })
        .collect();
    let events: Vec<Event> = ids
        .iter()
        .map(|id| event(id, 1, "login", NOW, serde_json::json!({})))
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let results = pipeline.process_batch(&mut batch);

    for (id, result) in ids.iter().zip(results) {
        let evaluation = result.unwrap();
        let record = &evaluation.invocations[0];
        if *id == "seatless" {
            assert_eq!(
                record.outcome,
                Outcome::PluginError {
                    kind: "invalid-input".into(),
                    message: "account seatless has no licensed seats".into(),
                }
            );
            assert!(evaluation.scores.is_empty());
        } else {
            assert_eq!(record.outcome, Outcome::Ok, "{id}");
            assert_eq!(evaluation.scores[0].card.name, "health", "{id}");
            assert!(!evaluation.scores[0].card.factors.is_empty(), "{id}");
        }
    }
}

#[test]
fn each_event_of_a_batch_gets_its_own_clock() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("clock-and-dice")).unwrap();
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids = ["a", "b", "c"];
    let mut states: Vec<AccountState> = ids
        .iter()
        .map(|id| AccountState::new(account(id, Tier::MidMarket, Industry::Technology, 10, 5)))
        .collect();
    let events: Vec<Event> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            event(
                id,
                1,
                "login",
                NOW - n as i64 * 60_000,
                serde_json::json!({}),
            )
        })
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let results = pipeline.process_batch(&mut batch);

    for (event, result) in events.iter().zip(results) {
        let evaluation = result.unwrap();
        let clock = &evaluation.scores[0].card.factors[0];
        assert_eq!(clock.name, "clock");
        assert_eq!(clock.raw, event.occurred_at as f64, "{}", event.id);
        assert!(evaluation.invocations[0].fuel_used > 0);
    }
}

#[test]
fn a_batch_answered_without_beginning_its_items_is_refused() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("batch-skipper")).unwrap();
    assert_eq!(plugin.contract(), "0.2.0");
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let (mut states, events) = one_login_each(&["a".into(), "b".into()]);
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    for result in pipeline.process_batch(&mut batch) {
        let evaluation = result.unwrap();
        assert!(evaluation.scores.is_empty());
        match &evaluation.invocations[0].outcome {
            Outcome::InvalidOutput { reason } => {
                // Narrowed down to each item alone, which fails the same way.
                assert!(reason.contains("given 1 items, began 0"), "{reason}")
            }
            other => panic!("expected the answer refused, got {other:?}"),
        }
    }
}

#[test]
fn packed_results_pointing_outside_their_text_are_refused_for_that_item_alone() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("span-liar")).unwrap();
    assert_eq!(plugin.contract(), "0.4.0");
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids = ["honest-1".to_string(), "liar".into(), "honest-2".into()];
    let (mut states, events) = one_login_each(&ids);
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let evaluations: Vec<Evaluation> = pipeline
        .process_batch(&mut batch)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (id, evaluation) in ids.iter().zip(&evaluations) {
        let outcome = &evaluation.invocations[0].outcome;
        if id == "liar" {
            assert!(evaluation.signals.is_empty());
            match outcome {
                Outcome::InvalidOutput { reason } => {
                    assert!(reason.contains("malformed"), "{reason}")
                }
                other => panic!("expected the lying item refused, got {other:?}"),
            }
        } else {
            assert_eq!(*outcome, Outcome::Ok, "{id}");
            assert_eq!(evaluation.signals.len(), 1, "{id}");
        }
    }
}

#[test]
fn plugins_built_against_contract_0_1_are_still_loaded_and_called_once_per_event() {
    let runtime = runtime();
    let scorer = load(&runtime, &component("legacy-scorer")).unwrap();
    let playbook = load(&runtime, &component("legacy-playbook")).unwrap();
    assert_eq!(scorer.contract(), "0.1.0");
    assert_eq!(playbook.contract(), "0.1.0");
    let pipeline = Pipeline::new(PluginSet::new([
        std::sync::Arc::new(scorer),
        std::sync::Arc::new(playbook),
    ]));
    let tiers = [
        ("big", Tier::Enterprise, 6),
        ("small", Tier::SmallBusiness, 2),
    ];
    let mut states: Vec<AccountState> = tiers
        .iter()
        .map(|(id, tier, _)| AccountState::new(account(id, *tier, Industry::Technology, 10, 5)))
        .collect();
    // Earlier logins, recorded one event at a time.
    for ((id, _, logins), state) in tiers.iter().zip(&mut states) {
        for n in 0..*logins {
            let at = NOW - (n as i64 + 1) * 86_400_000;
            pipeline
                .process(state, &event(id, n, "login", at, serde_json::json!({})))
                .unwrap();
        }
    }
    let events: Vec<Event> = tiers
        .iter()
        .map(|(id, _, _)| event(id, 99, "login", NOW, serde_json::json!({})))
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let results = pipeline.process_batch(&mut batch);

    let big = results[0].as_ref().unwrap();
    assert_eq!(
        big.scores[0].card.value, 70.0,
        "six earlier logins and this one"
    );
    assert_eq!(big.scores[0].card.band, "engaged");
    assert_eq!(big.signals.len(), 1);
    assert_eq!(big.intents.len(), 1);
    assert_eq!(big.intents[0].intent.idempotency_key, "login-big-99");
    let calls: Vec<&str> = big.invocations.iter().map(|r| r.call).collect();
    assert_eq!(calls, ["score", "evaluate", "check", "plan"]);
    assert!(big.invocations.iter().all(|r| r.outcome == Outcome::Ok));

    let small = results[1].as_ref().unwrap();
    assert_eq!(small.scores[0].card.value, 30.0);
    assert_eq!(small.scores[0].card.band, "quiet");
    assert!(
        small.intents.is_empty(),
        "the playbook's condition leaves small business out"
    );
}

#[test]
fn a_plugin_writing_to_stderr_for_every_item_of_a_large_batch_keeps_working() {
    // About 240 bytes of stderr an item: a batch of 600 fills the 64 KiB
    // capture several times over, so the host retires instances mid-batch.
    let runtime = runtime();
    let plugin = load(&runtime, &component("chatty")).unwrap();
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids: Vec<String> = (0..600).map(|n| format!("acct-{n}")).collect();
    let (mut states, events) = one_login_each(&ids);
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    for (n, result) in pipeline.process_batch(&mut batch).into_iter().enumerate() {
        let evaluation = result.unwrap();
        assert_eq!(evaluation.invocations.len(), 1, "item {n}");
        assert_eq!(evaluation.invocations[0].outcome, Outcome::Ok, "item {n}");
        assert_eq!(evaluation.scores[0].card.value, 60.0, "item {n}");
    }
}

/// Loads the login scorer `name`, built against contract `contract`
/// without the SDK, and checks that a batch scores each account on its own
/// history: account n logged in 10 * n times before the batch, once in it.
fn login_scorer_scores_each_item_on_its_own_history(name: &str, contract: &str) {
    let runtime = runtime();
    let plugin = load(&runtime, &component(name)).unwrap();
    assert_eq!(plugin.contract(), contract);
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let ids: Vec<String> = (0..5).map(|n| format!("acct-{n}")).collect();
    let mut states: Vec<AccountState> = ids
        .iter()
        .map(|id| AccountState::new(account(id, Tier::MidMarket, Industry::Technology, 10, 5)))
        .collect();
    // Account n logged in 10 * n times two days before the batch.
    for (n, state) in states.iter_mut().enumerate() {
        let earlier = event(
            &state.account.id,
            0,
            "usage.daily",
            NOW - 2 * 86_400_000,
            serde_json::json!({ "logins": 10 * n }),
        );
        pipeline.process(state, &earlier).unwrap();
    }
    let events: Vec<Event> = ids
        .iter()
        .map(|id| {
            event(
                id,
                1,
                "usage.daily",
                NOW,
                serde_json::json!({ "logins": 1 }),
            )
        })
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    for (n, result) in pipeline.process_batch(&mut batch).into_iter().enumerate() {
        let evaluation = result.unwrap();
        assert_eq!(evaluation.invocations[0].outcome, Outcome::Ok, "item {n}");
        let expected = (10 * n + 1) as f64;
        assert_eq!(evaluation.scores[0].card.value, expected, "item {n}");
    }
}

#[test]
fn a_plugin_built_against_contract_0_2_still_scores_each_item_of_a_batch_on_its_own_history() {
    login_scorer_scores_each_item_on_its_own_history("v02-scorer", "0.2.0");
}

#[test]
fn a_plugin_built_against_contract_0_3_still_gets_its_declared_windows_from_each_begin() {
    // The 0.3 scorer reads its logins only from what `begin` returns.
    login_scorer_scores_each_item_on_its_own_history("v03-scorer", "0.3.0");
    let plugin = load(&runtime(), &component("v03-scorer")).unwrap();
    assert_eq!(plugin.windows().len(), 1);
    assert_eq!(plugin.windows()[0].metric, "logins");
}

#[test]
fn a_contract_0_4_plugin_gets_every_items_declared_windows_with_the_batch() {
    // The 0.4 scorer reads its logins only from the batch's windows, and
    // packs its cards by hand.
    login_scorer_scores_each_item_on_its_own_history("v04-scorer", "0.4.0");
}

#[test]
fn a_scorer_built_against_contract_0_5_still_returns_its_card_names_as_strings() {
    login_scorer_scores_each_item_on_its_own_history("v05-scorer", "0.5.0");
    let plugin = load(&runtime(), &component("v05-scorer")).unwrap();
    assert!(plugin.scores().is_empty());
    let evaluations = one_event_each_in_a_batch(
        plugin,
        &[("acme", Tier::MidMarket, Industry::Technology)],
        "usage.daily",
        serde_json::json!({ "logins": 60 }),
    );
    let card = &evaluations[0].scores[0].card;
    assert_eq!(
        (card.name.as_str(), card.band.as_str(), card.rag),
        ("login-score", "high", Rag::Green)
    );
    assert_eq!(card.factors[0].name, "logins");
    assert_eq!(card.factors[0].note, "logins in the last 30 days");
}

#[test]
fn a_contract_0_6_card_gets_its_declared_names_back_and_an_undeclared_or_repeated_factor_fails_that_item_alone()
 {
    // The 0.6 scorer packs its cards by hand: score, band and factors by
    // position, its notes as text.
    login_scorer_scores_each_item_on_its_own_history("v06-scorer", "0.6.0");
    let runtime = runtime();
    let report = runtime.inspect(&component("v06-scorer"));
    assert_eq!(report.contract.as_deref(), Some("0.6.0"));
    let declared: Vec<(&str, Vec<&str>, Vec<&str>)> = report
        .scores
        .iter()
        .map(|score| {
            fn names(names: &[Text]) -> Vec<&str> {
                names.iter().map(Text::as_str).collect()
            }
            (
                score.name.as_str(),
                names(&score.bands),
                names(&score.factors),
            )
        })
        .collect();
    assert_eq!(
        declared,
        [
            ("login-score", vec!["low", "high"], vec!["logins", "streak"]),
            ("activity", vec!["quiet", "busy"], vec!["sessions"]),
        ]
    );
    let plugin = load(&runtime, &component("v06-scorer")).unwrap();
    assert_eq!(plugin.scores(), report.scores);
    let accounts = [
        "first", "streak-1", "busy-1", "liar", "twice", "failing", "last",
    ];
    let accounts: Vec<(&str, Tier, Industry)> = accounts
        .iter()
        .map(|id| (*id, Tier::MidMarket, Industry::Technology))
        .collect();
    let evaluations = one_event_each_in_a_batch(
        plugin,
        &accounts,
        "usage.daily",
        serde_json::json!({ "logins": 1 }),
    );
    let card = |at: usize| {
        let card = &evaluations[at].scores[0].card;
        let factors: Vec<(&str, &str)> = card
            .factors
            .iter()
            .map(|f| (f.name.as_str(), f.note.as_str()))
            .collect();
        (card.name.as_str(), card.band.as_str(), card.rag, factors)
    };
    let note = "1 logins in the last 30 days";
    for at in [0, 6] {
        assert_eq!(
            card(at),
            ("login-score", "low", Rag::Red, vec![("logins", note)])
        );
    }
    // Position 1 of each list: the second factor, the second score and
    // its second band.
    assert_eq!(
        card(1),
        ("login-score", "low", Rag::Red, vec![("streak", note)])
    );
    assert_eq!(
        card(2),
        ("activity", "busy", Rag::Green, vec![("sessions", note)])
    );
    let outcome = |at: usize| evaluations[at].invocations[0].outcome.clone();
    // Factor 7 is not declared, and `logins` twice is one too many: those
    // cards alone are refused.
    for (at, expected) in [
        (3, "names factor 7, but 2 factors are declared there"),
        (4, "lists the factor `logins` twice"),
    ] {
        assert!(evaluations[at].scores.is_empty());
        match outcome(at) {
            Outcome::InvalidOutput { reason } => {
                assert!(reason.contains(expected), "{reason}")
            }
            other => panic!("expected the card refused, got {other:?}"),
        }
    }
    // A plugin error comes back for its item alone, lifted from 0.6's.
    assert!(evaluations[5].scores.is_empty());
    match outcome(5) {
        Outcome::PluginError { kind, message } => {
            assert_eq!(
                (kind.as_str(), message.as_str()),
                ("insufficient-data", "no logins yet")
            )
        }
        other => panic!("expected the plugin error, got {other:?}"),
    }
}

#[test]
fn a_contract_0_6_scorer_that_declares_no_score_a_score_twice_or_one_without_bands_is_refused_at_load()
 {
    for (declare, expected) in [
        ("nothing", "declares no score"),
        ("twice", "the score `login-score` twice"),
        ("no-band", "the score `login-score` with no band"),
    ] {
        refused_by_describe("v06-scorer", declare, expected);
    }
}

#[test]
fn a_plugin_built_with_the_sdk_declares_its_windows_and_reports_them_when_inspected() {
    let runtime = runtime();
    let plugin = load(&runtime, standard("health-score")).unwrap();
    assert_eq!(plugin.contract(), "0.7.0");
    let declared: Vec<(&str, u32, u32)> = plugin
        .windows()
        .iter()
        .map(|w| (w.metric.as_str(), w.days, w.offset_days))
        .collect();
    assert_eq!(
        declared,
        [
            ("logins", 30, 0),
            ("logins", 30, 30),
            ("support.ticket.opened", 30, 0),
            ("nps", 90, 0),
            ("sentiment", 90, 0),
            ("payment-days-overdue", 90, 0),
        ]
    );
    let report = runtime.inspect(standard("health-score"));
    assert_eq!(report.windows, plugin.windows());
}

#[test]
fn the_standard_condition_declares_every_policy_tag_its_verdicts_carry() {
    let runtime = runtime();
    let condition = load(&runtime, standard("tier-conditions")).unwrap();
    assert_eq!(condition.contract(), "0.7.0");
    let declared: Vec<String> = condition
        .policy_tags()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(declared.len(), 29);
    assert_eq!(
        runtime.inspect(standard("tier-conditions")).policy_tags,
        declared
    );
    // Every verdict over a portfolio of every tier and industry: none
    // refused for a tag it did not declare, and the tags come back by name.
    let pipeline = standard_pipeline(&runtime, InstanceMode::Warm);
    let mut seen = std::collections::BTreeSet::new();
    for account in generate_portfolio(40, 11) {
        let mut state = AccountState::new(account.account.clone());
        for event in &account.events {
            let evaluation = pipeline.process(&mut state, event).unwrap();
            for record in evaluation.invocations.iter().filter(|r| r.call == "check") {
                assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
            }
            for signal in &evaluation.signals {
                if let Disposition::Acted { policy_tags } = &signal.disposition {
                    seen.extend(policy_tags.iter().map(ToString::to_string));
                }
            }
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
    assert!(seen.iter().all(|tag| declared.contains(tag)), "{seen:?}");
}

#[test]
fn a_contract_0_5_playbook_names_its_declared_policy_tags_by_bit_and_a_bit_it_never_declared_is_refused_for_that_item_alone()
 {
    let runtime = runtime();
    let named = ["monitoring-24x7", "hipaa", "tagged-by-bit"];
    let report = runtime.inspect(&component("v05-playbook"));
    assert_eq!(report.contract.as_deref(), Some("0.5.0"));
    assert_eq!(report.policy_tags.len(), 63);
    assert_eq!(report.policy_tags[..3], named);
    let plugin = load(&runtime, &component("v05-playbook")).unwrap();
    assert_eq!(plugin.contract(), "0.5.0");
    assert_eq!(plugin.policy_tags()[..3], named);
    assert_eq!(plugin.policy_tags()[62], "filler-62");
    let evaluations = one_login_each_in_a_batch(
        plugin,
        &[
            ("clinic", Tier::Enterprise, Industry::Healthcare),
            ("liar", Tier::Enterprise, Industry::Technology),
            ("shop", Tier::SmallBusiness, Industry::ECommerce),
            ("failing", Tier::MidMarket, Industry::Technology),
            ("top", Tier::MidMarket, Industry::Technology),
        ],
    );
    // The bits come back as the declared names, in the declared order, and
    // the action is handed them by name.
    assert_eq!(acted_tags(&evaluations[0]), named);
    assert_eq!(
        notified(&evaluations[0]),
        "monitoring-24x7,hipaa,tagged-by-bit"
    );
    assert_eq!(acted_tags(&evaluations[2]), ["tagged-by-bit"]);
    assert_eq!(notified(&evaluations[2]), "tagged-by-bit");
    // Bit 62, in the high word, is the last declared tag.
    assert_eq!(acted_tags(&evaluations[4]), ["tagged-by-bit", "filler-62"]);
    let check = |evaluation: &Evaluation| {
        evaluation
            .invocations
            .iter()
            .find(|record| record.call == "check")
            .unwrap()
            .outcome
            .clone()
    };
    // Bit 63 names no declared tag: that verdict alone is refused.
    assert!(evaluations[1].intents.is_empty());
    match check(&evaluations[1]) {
        Outcome::InvalidOutput { reason } => {
            assert!(
                reason.contains("names policy tag 63, but the plugin declares 63 tags"),
                "{reason}"
            )
        }
        other => panic!("expected the undeclared tag refused, got {other:?}"),
    }
    // A plugin error comes back for its item alone, lifted from 0.5's
    // packed verdicts.
    assert!(evaluations[3].intents.is_empty());
    match check(&evaluations[3]) {
        Outcome::PluginError { kind, message } => {
            assert_eq!(
                (kind.as_str(), message.as_str()),
                ("insufficient-data", "not yet")
            )
        }
        other => panic!("expected the plugin's error, got {other:?}"),
    }
    for at in [0, 2, 4] {
        assert!(
            evaluations[at]
                .invocations
                .iter()
                .all(|record| record.outcome == Outcome::Ok),
            "{:?}",
            evaluations[at].invocations
        );
    }
}

#[test]
fn an_sdk_built_playbook_gets_its_declared_tags_back_in_the_declared_order_and_a_tag_it_never_declared_fails_that_item_alone()
 {
    let runtime = runtime();
    let plugin = load(&runtime, &component("audit-playbook")).unwrap();
    assert_eq!(plugin.contract(), "0.7.0");
    assert_eq!(plugin.policy_tags(), ["sox", "audit-trail"]);
    let bank = |id| (id, Tier::MidMarket, Industry::FinancialServices);
    let evaluations = one_event_each_in_a_batch(
        plugin,
        &[bank("bank"), bank("reordered-bank"), bank("careless-bank")],
        "payment.overdue",
        serde_json::json!({"payment_days_overdue": 45}),
    );

    assert_eq!(acted_tags(&evaluations[0]), ["sox"]);
    // Listed as `audit-trail`, then a `sox` built at run time: back as
    // declared, `sox` first.
    assert_eq!(acted_tags(&evaluations[1]), ["sox", "audit-trail"]);
    for planned in &evaluations[..2] {
        assert_eq!(planned.intents.len(), 1, "{:?}", planned.intents);
    }

    // `pci-dss` was never declared: that item's check fails with the SDK's
    // error, its signal is not acted on, and the batch's others are not
    // touched.
    let careless = &evaluations[2];
    let check = careless
        .invocations
        .iter()
        .find(|record| record.call == "check")
        .unwrap();
    match &check.outcome {
        Outcome::PluginError { kind, message } => {
            assert_eq!(kind, "internal");
            assert!(
                message.contains("policy tag `pci-dss` is not declared"),
                "{message}"
            );
        }
        other => panic!("expected the SDK's error for an undeclared tag, got {other:?}"),
    }
    match &careless.signals[0].disposition {
        Disposition::NotApplicable { reason } => {
            assert!(reason.contains("condition audit-playbook"), "{reason}");
            assert!(reason.contains("not declared"), "{reason}");
        }
        other => panic!("expected the signal not acted on, got {other:?}"),
    }
    assert!(careless.intents.is_empty());
}

#[test]
fn a_contract_0_5_plugin_declaring_a_tag_twice_too_many_tags_or_an_empty_one_is_refused_at_load() {
    for (declare, expected) in [
        ("twice", "declares the policy tag `hipaa` twice"),
        ("too-many", "declares 65 policy tags; at most 64"),
        ("empty", "a declared policy tag is empty"),
    ] {
        refused_by_describe("v05-playbook", declare, expected);
    }
}

#[test]
fn a_contract_0_4_playbook_still_returns_its_policy_tags_as_strings() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("v04-playbook")).unwrap();
    assert_eq!(plugin.contract(), "0.4.0");
    assert!(plugin.policy_tags().is_empty());
    let evaluations = one_login_each_in_a_batch(
        plugin,
        &[
            ("clinic", Tier::Enterprise, Industry::Healthcare),
            ("shop", Tier::SmallBusiness, Industry::ECommerce),
        ],
    );
    assert_eq!(
        acted_tags(&evaluations[0]),
        ["monitoring-24x7", "hipaa", "tagged-by-bit"]
    );
    assert_eq!(acted_tags(&evaluations[1]), ["tagged-by-bit"]);
    assert_eq!(
        notified(&evaluations[0]),
        "monitoring-24x7,hipaa,tagged-by-bit"
    );
}

/// Evaluates one login of each account `(id, tier, industry)` in one
/// batch through `plugin` alone.
fn one_login_each_in_a_batch(
    plugin: vigil_host::runtime::Plugin,
    accounts: &[(&str, Tier, Industry)],
) -> Vec<Evaluation> {
    one_event_each_in_a_batch(plugin, accounts, "login", serde_json::json!({}))
}

/// Loads `component` configured with `declare` = `declare` and requires
/// its `describe` refused with a reason containing `expected`.
fn refused_by_describe(component_name: &str, declare: &str, expected: &str) {
    let config = BTreeMap::from([("declare".to_string(), declare.to_string())]);
    let refused = runtime()
        .load(&component(component_name), config, InstanceMode::Warm)
        .unwrap_err();
    match &refused {
        LoadError::Describe(reason) => assert!(reason.contains(expected), "{reason}"),
        other => panic!("expected {declare} refused by describe, got {other:?}"),
    }
}

/// Runs `plugin` alone over one `kind` event with `payload` at `NOW` for
/// each account (10 seats, 5 active), all in one batch.
fn one_event_each_in_a_batch(
    plugin: vigil_host::runtime::Plugin,
    accounts: &[(&str, Tier, Industry)],
    kind: &str,
    payload: serde_json::Value,
) -> Vec<Evaluation> {
    let pipeline = Pipeline::new(PluginSet::new([std::sync::Arc::new(plugin)]));
    let mut states: Vec<AccountState> = accounts
        .iter()
        .map(|(id, tier, industry)| AccountState::new(account(id, *tier, *industry, 10, 5)))
        .collect();
    let events: Vec<Event> = accounts
        .iter()
        .map(|(id, _, _)| event(id, 1, kind, NOW, payload.clone()))
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    pipeline
        .process_batch(&mut batch)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// The policy tags of the evaluation's first signal, which was acted on.
fn acted_tags(evaluation: &Evaluation) -> Vec<String> {
    match &evaluation.signals[0].disposition {
        Disposition::Acted { policy_tags } => policy_tags.iter().map(ToString::to_string).collect(),
        other => panic!("expected the signal acted on, got {other:?}"),
    }
}

/// The summary of the evaluation's first intent, a notification.
fn notified(evaluation: &Evaluation) -> String {
    match &evaluation.intents[0].intent.kind {
        IntentKind::Notify(notify) => notify.summary.clone(),
        other => panic!("expected a notification, got {other:?}"),
    }
}
