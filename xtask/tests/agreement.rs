//! The four implementations of the bench rule set decide alike, and the
//! check notices when one does not.

use vigil_host::demo::generate_portfolio;
use vigil_host::runtime::{InstanceMode, Interruption};
use xtask::bench::{check_agreement, contenders, outcomes};
use xtask::engines::{Contender, FactsEngine, FactsHost, Native, Vigil};
use xtask::rules::{Facts, Outcome, native};

#[test]
fn the_four_engines_agree_on_every_event_of_a_small_portfolio() {
    let portfolio = generate_portfolio(40, 7);
    let mut engines = contenders().unwrap();
    let events = check_agreement(&mut engines, &portfolio).unwrap();
    assert_eq!(
        events,
        portfolio.iter().map(|a| a.events.len()).sum::<usize>()
    );
}

#[test]
fn the_portfolio_exercises_every_signal_and_both_verdicts() {
    let portfolio = generate_portfolio(40, 7);
    let mut native = FactsHost::new("native", Native);
    let all = outcomes(&mut native, &portfolio).unwrap();
    let names: std::collections::BTreeSet<&str> = all
        .iter()
        .flat_map(|o| o.signals.iter().map(|s| s.name.as_str()))
        .collect();
    for name in [
        "health.critical",
        "health.declining",
        "health.stable",
        "health.optimal",
        "health.below-60",
        "health.trend-down",
        "usage.none",
        "usage.low",
        "usage.login-decline",
        "support.ticket-spike",
    ] {
        assert!(names.contains(name), "{name} never fired: {names:?}");
    }
    let verdicts: std::collections::BTreeSet<bool> = all
        .iter()
        .flat_map(|o| o.signals.iter().map(|s| s.applies))
        .collect();
    assert_eq!(verdicts.len(), 2);
}

#[test]
fn every_interruption_mode_and_fresh_instances_decide_like_native_rust() {
    let portfolio = generate_portfolio(8, 11);
    let mut engines: Vec<Box<dyn Contender>> = vec![Box::new(FactsHost::new("native", Native))];
    for (interruption, mode) in [
        (Interruption::FuelAndEpoch, InstanceMode::Fresh),
        (Interruption::Fuel, InstanceMode::Warm),
        (Interruption::Epoch, InstanceMode::Warm),
        (Interruption::None, InstanceMode::Warm),
    ] {
        engines.push(Box::new(Vigil::new("vigil", interruption, mode).unwrap()));
        engines.push(Box::new(
            Vigil::new("vigil batched", interruption, mode)
                .unwrap()
                .batched(3),
        ));
    }
    check_agreement(&mut engines, &portfolio).unwrap();
}

#[test]
fn the_three_triggers_as_one_plugin_decide_alike_in_two_calls_fewer_an_event() {
    let portfolio = generate_portfolio(40, 7);
    let mut engines: Vec<Box<dyn Contender>> = vec![
        Box::new(FactsHost::new("native", Native)),
        Box::new(
            Vigil::one_trigger(
                "one trigger",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )
            .unwrap()
            .batched(5),
        ),
    ];
    check_agreement(&mut engines, &portfolio).unwrap();

    // Per event the pipeline calls every trigger once: three items become
    // one, and the checks (one per signal) are as many.
    let mut five = Vigil::new("five", Interruption::FuelAndEpoch, InstanceMode::Warm).unwrap();
    let mut three =
        Vigil::one_trigger("three", Interruption::FuelAndEpoch, InstanceMode::Warm).unwrap();
    assert_eq!(
        outcomes(&mut five, &portfolio).unwrap(),
        outcomes(&mut three, &portfolio).unwrap()
    );
    let ((events, five_calls, _), (same_events, three_calls, _)) = (five.tally(), three.tally());
    assert_eq!(events, same_events);
    assert!(events > 0);
    assert_eq!(five_calls - three_calls, 2 * events);
}

#[test]
fn the_rules_as_one_ruleset_decide_alike_in_one_call_an_event() {
    let portfolio = generate_portfolio(40, 7);
    let mut engines: Vec<Box<dyn Contender>> = vec![
        Box::new(FactsHost::new("native", Native)),
        Box::new(
            Vigil::ruleset("ruleset", Interruption::FuelAndEpoch, InstanceMode::Warm)
                .unwrap()
                .batched(5),
        ),
        Box::new(
            Vigil::ruleset(
                "ruleset alone",
                Interruption::FuelAndEpoch,
                InstanceMode::Fresh,
            )
            .unwrap(),
        ),
    ];
    check_agreement(&mut engines, &portfolio).unwrap();

    // One record an event: the ruling's, whatever it raised and checked.
    let mut ruleset =
        Vigil::ruleset("ruleset", Interruption::FuelAndEpoch, InstanceMode::Warm).unwrap();
    let mut five = Vigil::new("five", Interruption::FuelAndEpoch, InstanceMode::Warm).unwrap();
    assert_eq!(
        outcomes(&mut ruleset, &portfolio).unwrap(),
        outcomes(&mut five, &portfolio).unwrap()
    );
    let ((events, calls, fuel), (same_events, five_calls, _)) = (ruleset.tally(), five.tally());
    assert_eq!(events, same_events);
    assert!(events > 0);
    assert_eq!(calls, events);
    assert!(
        five_calls > 5 * events,
        "{five_calls} calls for {events} events"
    );
    assert!(fuel > 0);
}

#[test]
fn calls_record_fuel_only_when_the_runtime_counts_it() {
    let portfolio = generate_portfolio(2, 3);
    for (interruption, burns) in [
        (Interruption::FuelAndEpoch, true),
        (Interruption::Fuel, true),
        (Interruption::Epoch, false),
        (Interruption::None, false),
    ] {
        let mut vigil = Vigil::new("vigil", interruption, InstanceMode::Warm).unwrap();
        outcomes(&mut vigil, &portfolio).unwrap();
        let (events, calls, fuel) = vigil.tally();
        assert!(events > 0 && calls > events, "{interruption:?}");
        assert_eq!(fuel > 0, burns, "{interruption:?}: {fuel} fuel");
    }
}

/// Native Rust with its score nudged past the tolerance.
struct Nudged;

impl FactsEngine for Nudged {
    type Output = native::Result;

    fn evaluate(&mut self, facts: &Facts) -> anyhow::Result<native::Result> {
        let mut result = native::evaluate(facts);
        result.score += 0.01;
        Ok(result)
    }

    fn score(output: &native::Result) -> anyhow::Result<f64> {
        Ok(output.score)
    }

    fn outcome(output: &native::Result) -> anyhow::Result<Outcome> {
        Ok(output.outcome())
    }
}

#[test]
fn a_disagreeing_engine_fails_the_check_naming_the_event() {
    let portfolio = generate_portfolio(2, 1);
    let mut engines: Vec<Box<dyn Contender>> = vec![
        Box::new(FactsHost::new("native", Native)),
        Box::new(FactsHost::new("nudged", Nudged)),
    ];
    let error = check_agreement(&mut engines, &portfolio)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("native and nudged disagree on event acct-00000-e0000"),
        "{error}"
    );
    assert!(error.contains("score"), "{error}");
}
