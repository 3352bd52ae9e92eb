//! A trap, a limit hit or an oversized result is contained: the call is
//! recorded with its cause, the instance is discarded, everything else goes on.

use std::time::Duration;

use vigil_host::history::MetricHistory;
use vigil_host::runtime::bindings::types::{Industry, Tier};
use vigil_host::runtime::{Limits, Outcome, Runtime};

use crate::support::{
    account, assert_imports_only_the_contract, component, component_without_wasi, context, input,
    load, runtime, standard,
};

fn healthy_call_still_succeeds(runtime: &Runtime) {
    let scorer = load(runtime, standard("health-score")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 100, 80),
        "usage.weekly",
    );
    let invocation = scorer.score(input(&mut history), &ctx);
    assert_eq!(invocation.record.outcome, Outcome::Ok);
}

#[test]
fn an_infinite_loop_is_stopped_by_its_fuel_budget() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("spin-forever")).unwrap();
    assert_eq!(
        plugin.fuel_budget(),
        Limits::default().max_fuel,
        "the host caps the plugin's own budget"
    );
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &ctx);
    assert_eq!(invocation.record.outcome, Outcome::OutOfFuel);
    assert_eq!(invocation.record.fuel_used, plugin.fuel_budget());
    assert!(invocation.output.is_none());
    healthy_call_still_succeeds(&runtime);
}

#[test]
fn an_infinite_loop_with_unlimited_fuel_is_stopped_by_the_deadline() {
    let runtime = Runtime::new(Limits {
        max_fuel: u64::MAX / 2,
        deadline: Duration::from_millis(100),
        ..Limits::default()
    })
    .unwrap();
    let plugin = load(&runtime, &component("spin-forever")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &ctx);
    assert_eq!(invocation.record.outcome, Outcome::Timeout);
    healthy_call_still_succeeds(&runtime);
}

#[test]
fn unbounded_memory_growth_is_capped() {
    // Fuel is plentiful here so that the memory cap, not the fuel budget,
    // is what stops the hog.
    let runtime = Runtime::new(Limits {
        memory_bytes: 16 << 20,
        max_fuel: 10_000_000_000,
        ..Limits::default()
    })
    .unwrap();
    let plugin = load(&runtime, &component("memory-hog")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &ctx);
    assert_eq!(invocation.record.outcome, Outcome::MemoryLimit);
    healthy_call_still_succeeds(&runtime);
}

#[test]
fn a_panic_in_a_plugin_built_without_wasi_keeps_its_message_through_the_log_import() {
    let runtime = runtime();
    let bytes = component_without_wasi("panicker");
    assert_imports_only_the_contract(&runtime.inspect(&bytes), "panicker");
    let plugin = load(&runtime, &bytes).unwrap();
    let mut history = MetricHistory::default();
    let fine = context(
        account("fine", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let boom = context(
        account("boom", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    // A good call first, so the panic is not the instance's first call.
    assert_eq!(
        plugin.score(input(&mut history), &fine).record.outcome,
        Outcome::Ok
    );
    let invocation = plugin.score(input(&mut history), &boom);
    match &invocation.record.outcome {
        Outcome::Trap { reason } => {
            assert!(
                reason.contains("guest log: panicked at")
                    && reason.contains("account boom is not supported"),
                "panic message kept: {reason}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let invocation = plugin.score(input(&mut history), &fine);
    assert_eq!(invocation.record.outcome, Outcome::Ok);
    assert_eq!(invocation.output.unwrap().value, 50.0);
}

#[test]
fn a_guest_panic_is_contained_and_the_next_call_succeeds_on_a_fresh_instance() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("panicker")).unwrap();
    let mut history = MetricHistory::default();
    let boom = context(
        account("boom", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &boom);
    match &invocation.record.outcome {
        Outcome::Trap { reason } => {
            assert!(
                reason.contains("account boom is not supported"),
                "panic message kept: {reason}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let fine = context(
        account("fine", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &fine);
    assert_eq!(invocation.record.outcome, Outcome::Ok);
    assert_eq!(invocation.output.unwrap().value, 50.0);
}

#[test]
fn a_result_over_the_output_cap_is_rejected() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("oversized-output")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &ctx);
    match invocation.record.outcome {
        Outcome::OutputTooLarge { bytes, limit } => {
            assert!(bytes > 1 << 20);
            assert_eq!(limit, Limits::default().output_bytes);
        }
        other => panic!("expected output too large, got {other:?}"),
    }
    assert!(invocation.output.is_none());
}

#[test]
fn hostile_plugins_on_other_threads_do_not_disturb_a_healthy_one() {
    let runtime = runtime();
    let hog = load(&runtime, &component("memory-hog")).unwrap();
    let spinner = load(&runtime, &component("spin-forever")).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut history = MetricHistory::default();
            let ctx = context(
                account("a", Tier::MidMarket, Industry::Technology, 10, 5),
                "test",
            );
            for _ in 0..3 {
                assert!(
                    hog.score(input(&mut history), &ctx)
                        .record
                        .outcome
                        .is_fault()
                );
            }
        });
        scope.spawn(|| {
            let mut history = MetricHistory::default();
            let ctx = context(
                account("b", Tier::MidMarket, Industry::Technology, 10, 5),
                "test",
            );
            assert!(
                spinner
                    .score(input(&mut history), &ctx)
                    .record
                    .outcome
                    .is_fault()
            );
        });
        for _ in 0..20 {
            healthy_call_still_succeeds(&runtime);
        }
    });
}

#[test]
fn a_plugin_that_sleeps_cannot_park_a_host_thread() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("sleeper")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let started = std::time::Instant::now();
    let invocation = plugin.score(input(&mut history), &ctx);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the sleep returned at once"
    );
    assert_eq!(invocation.record.outcome, Outcome::Ok);
    let slept = &invocation.output.unwrap().factors[0];
    assert_eq!(
        slept.raw, 0.0,
        "the plugin's clock does not move while it sleeps"
    );
}

#[test]
fn a_trigger_returning_more_signals_than_the_list_cap_is_rejected() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("signal-flood")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.evaluate(input(&mut history), &ctx);
    assert!(invocation.output.is_none());
    assert!(
        matches!(&invocation.record.outcome, Outcome::InvalidOutput { reason } if reason.contains("at most 64")),
        "{:?}",
        invocation.record.outcome
    );
}

#[test]
fn a_plugin_writing_to_stderr_on_every_call_keeps_working_on_warm_instances() {
    let runtime = runtime();
    let plugin = load(&runtime, &component("chatty")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    for call in 0..1_000 {
        let invocation = plugin.score(input(&mut history), &ctx);
        assert_eq!(invocation.record.outcome, Outcome::Ok, "call {call}");
    }
}

#[test]
fn unbounded_recursion_is_stopped_by_the_stack_limit() {
    let runtime = Runtime::new(Limits {
        max_fuel: 10_000_000_000,
        ..Limits::default()
    })
    .unwrap();
    let plugin = load(&runtime, &component("stack-bomb")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Technology, 10, 5),
        "test",
    );
    let invocation = plugin.score(input(&mut history), &ctx);
    assert!(
        matches!(&invocation.record.outcome, Outcome::Trap { reason } if reason.contains("stack")),
        "{:?}",
        invocation.record.outcome
    );
    healthy_call_still_succeeds(&runtime);
}
