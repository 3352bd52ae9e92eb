//! Same plugin digest + same input = same output and the same fuel.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use vigil_host::history::{DAY_MS, MetricHistory};
use vigil_host::pipeline::{AccountState, Evaluation, Pipeline, PluginSet};
use vigil_host::runtime::bindings::types::{Event, Industry, Tier};
use vigil_host::runtime::{CallInput, InstanceMode, Plugin, ScoreCard};

use crate::support::{
    NOW, account, component, context, event, input, load, run_events, runtime, standard,
    standard_pipeline, usage_history,
};

#[test]
fn the_same_input_twice_gives_identical_output_and_fuel() {
    let runtime = runtime();
    let plugin = runtime
        .load(
            standard("health-score"),
            Default::default(),
            InstanceMode::Fresh,
        )
        .unwrap();
    let mut history = MetricHistory::default();
    for day in 0..60 {
        history.record("logins", NOW - day * DAY_MS, (60 - day) as f64);
    }
    history.record("nps", NOW - 3 * DAY_MS, 7.0);
    let ctx = context(
        account("acme", Tier::Enterprise, Industry::Healthcare, 500, 230),
        "usage.weekly",
    );
    let first = plugin.score(input(&mut history), &ctx);
    let second = plugin.score(input(&mut history), &ctx);
    assert!(first.output.is_some());
    assert_eq!(first.output, second.output);
    assert_eq!(first.record.fuel_used, second.record.fuel_used);
    assert!(first.record.fuel_used > 0);
}

#[test]
fn the_clock_reads_the_evaluation_time_and_randomness_is_seeded_per_invocation() {
    let runtime = runtime();
    let plugin = runtime
        .load(
            &component("clock-and-dice"),
            Default::default(),
            InstanceMode::Fresh,
        )
        .unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Other, 10, 5),
        "test",
    );
    let first = plugin.score(input(&mut history), &ctx).output.unwrap();
    let second = plugin.score(input(&mut history), &ctx).output.unwrap();
    assert_eq!(first, second);
    let clock = first.factors.iter().find(|f| f.name == "clock").unwrap();
    assert_eq!(
        clock.raw, NOW as f64,
        "the guest's clock reads the evaluation time"
    );
}

/// The `draw` factor of a `clock-and-dice` card: what it drew from
/// `wasi:random/random`.
fn drawn(card: &ScoreCard) -> f64 {
    card.factors
        .iter()
        .find(|factor| factor.name == "draw")
        .map(|factor| factor.raw)
        .expect("the dice card has a draw")
}

#[test]
fn a_plugin_that_draws_randomness_is_seeded_from_each_event_and_draws_the_same_on_replay() {
    let runtime = runtime();
    let dice = Arc::new(load(&runtime, &component("clock-and-dice")).unwrap());
    assert!(dice.draws_randomness(), "it imports wasi:random/random");
    let health = Arc::new(load(&runtime, standard("health-score")).unwrap());
    assert!(
        !health.draws_randomness(),
        "health-score draws no randomness"
    );

    // In one batch, beside a plugin that draws none.
    let pipeline = Pipeline::new(PluginSet::new([Arc::clone(&dice), health]));
    let ids = ["a", "b", "c"];
    let accounts: Vec<_> = ids
        .iter()
        .map(|id| account(id, Tier::MidMarket, Industry::Technology, 10, 5))
        .collect();
    let mut states: Vec<AccountState> = accounts.iter().cloned().map(AccountState::new).collect();
    let events: Vec<Event> = ids
        .iter()
        .map(|id| event(id, 1, "login", NOW, serde_json::json!({})))
        .collect();
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(&events).collect();
    let draws: Vec<f64> = pipeline
        .process_batch(&mut batch)
        .into_iter()
        .map(|result| {
            let evaluation = result.unwrap();
            let card = evaluation
                .scores
                .iter()
                .map(|score| &score.card)
                .find(|card| card.name == "dice")
                .expect("the dice scored");
            drawn(card)
        })
        .collect();

    for (n, (event, draw)) in events.iter().zip(&draws).enumerate() {
        // The seed a replay of the decision uses: SHA-256 of the account
        // id, a NUL and the event id, with the plugin's digest mixed in.
        let mut seed: [u8; 32] = Sha256::new()
            .chain_update(&event.account_id)
            .chain_update([0u8])
            .chain_update(&event.id)
            .finalize()
            .into();
        for (byte, digest_byte) in seed.iter_mut().zip(dice.digest().bytes()) {
            *byte ^= digest_byte;
        }
        let mut history = MetricHistory::default();
        let alone = dice
            .score(
                CallInput {
                    now: event.occurred_at,
                    seed,
                    history: &mut history,
                },
                &context(accounts[n].clone(), "login"),
            )
            .output
            .unwrap();
        assert_eq!(drawn(&alone), *draw, "{}", event.id);
        assert!(
            !draws[..n].contains(draw),
            "{} drew what an earlier event drew",
            event.id
        );
    }

    // Replayed one event at a time on a pipeline of the dice alone.
    let replay = Pipeline::new(PluginSet::new([dice]));
    for ((account, event), draw) in accounts.into_iter().zip(&events).zip(&draws) {
        let (_, evaluations) = run_events(&replay, account, std::slice::from_ref(event));
        assert_eq!(drawn(&evaluations[0].scores[0].card), *draw, "{}", event.id);
    }
}

fn without_durations(mut evaluations: Vec<Evaluation>) -> Vec<Evaluation> {
    for evaluation in &mut evaluations {
        for record in &mut evaluation.invocations {
            record.duration_us = 0;
        }
    }
    evaluations
}

#[test]
fn replaying_an_event_stream_on_fresh_instances_reproduces_every_decision_and_its_fuel() {
    let runtime = runtime();
    let customer = account(
        "acme",
        Tier::Enterprise,
        Industry::FinancialServices,
        200,
        150,
    );
    let events = usage_history("acme", (150.0, 20.0), (900.0, 60.0));
    let (_, first) = run_events(
        &standard_pipeline(&runtime, InstanceMode::Fresh),
        customer.clone(),
        &events,
    );
    let (_, second) = run_events(
        &standard_pipeline(&runtime, InstanceMode::Fresh),
        customer.clone(),
        &events,
    );
    let first = without_durations(first);
    assert_eq!(first, without_durations(second));
    assert!(
        first.iter().any(|e| !e.intents.is_empty()),
        "the stream produces decisions"
    );

    // Warm instances give the same decisions (fuel may differ with the
    // allocator's state, so only outputs are compared).
    let (_, warm) = run_events(
        &standard_pipeline(&runtime, InstanceMode::Warm),
        customer,
        &events,
    );
    for (fresh, warm) in first.iter().zip(&warm) {
        assert_eq!(fresh.scores, warm.scores);
        assert_eq!(fresh.signals, warm.signals);
        assert_eq!(fresh.intents, warm.intents);
    }
}

/// The `memory-reset` component's reading of one call: the calls its
/// instance has answered, and the pages of its zeroed and of its
/// initialised statics that did not hold their initial values.
fn memory_reading(plugin: &Plugin, history: &mut MetricHistory) -> [f64; 3] {
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Other, 10, 5),
        "test",
    );
    let card = plugin
        .score(input(history), &ctx)
        .output
        .expect("memory-reset answers");
    let raw = |name: &str| {
        card.factors
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.raw)
            .unwrap_or_else(|| panic!("no factor {name}"))
    };
    [raw("calls"), raw("zeroed"), raw("sevens")]
}

#[test]
fn a_fresh_instance_never_sees_what_the_instance_before_it_wrote_to_memory() {
    let runtime = runtime();
    let fresh = runtime
        .load(
            &component("memory-reset"),
            Default::default(),
            InstanceMode::Fresh,
        )
        .unwrap();
    let mut history = MetricHistory::default();
    // Every call's instance takes the pool slot the last one gave back,
    // after the last one wrote a page in 2 MiB of zeroed memory (more than
    // the pool resets by copying) and in 64 KiB of the component's data.
    for call in 0..6 {
        assert_eq!(
            memory_reading(&fresh, &mut history),
            [1.0, 0.0, 0.0],
            "call {call} on a fresh instance found an earlier instance's writes"
        );
    }

    // The same component on a warm instance does see its own writes, so
    // the reading above would show a reset that missed any of them.
    let warm = load(&runtime, &component("memory-reset")).unwrap();
    assert_eq!(memory_reading(&warm, &mut history), [1.0, 0.0, 0.0]);
    assert_eq!(memory_reading(&warm, &mut history), [2.0, 512.0, 16.0]);
}
