//! The bench rule set's three triggers (xtask/src/rules.rs) in one plugin:
//! the same signals, in the same order, as `bench-health-signals`,
//! `bench-usage-signals` and `bench-ticket-signals` one after the other,
//! from one plugin item an event instead of three.
use vigil_sdk::prelude::*;

/// Every signal of the three triggers.
#[vigil_sdk::trigger(
    name = "bench-signals",
    description = "Bench rule set: the three triggers in one plugin.",
    fuel = 2_000_000,
    windows = [
        ("health", 30, 7),
        ("logins", 30, 0),
        ("logins", 30, 30),
        ("support.ticket.opened", 7, 0),
        ("support.ticket.opened", 28, 7),
    ]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    bench_rules::health(ctx, &mut signals);
    bench_rules::usage(ctx, &mut signals);
    bench_rules::ticket(ctx, &mut signals);
    Ok(signals)
}
