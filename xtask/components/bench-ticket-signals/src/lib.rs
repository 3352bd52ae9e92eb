//! The bench rule set's third trigger (xtask/src/rules.rs), its rule in
//! `bench-rules`: the support ticket spike.
use vigil_sdk::prelude::*;

/// A spike of support tickets in the last 7 days.
#[vigil_sdk::trigger(
    name = "bench-ticket-signals",
    description = "Bench rule set: support ticket spike.",
    fuel = 2_000_000,
    windows = [("support.ticket.opened", 7, 0), ("support.ticket.opened", 28, 7)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    bench_rules::ticket(ctx, &mut signals);
    Ok(signals)
}
