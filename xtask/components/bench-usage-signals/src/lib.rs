//! The bench rule set's second trigger (xtask/src/rules.rs), its rules in
//! `bench-rules`: no usage, low seat usage and the login decline.
use vigil_sdk::prelude::*;

/// Signals from seat usage and logins.
#[vigil_sdk::trigger(
    name = "bench-usage-signals",
    description = "Bench rule set: no usage, low usage, login decline.",
    fuel = 2_000_000,
    windows = [("logins", 30, 0), ("logins", 30, 30)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    bench_rules::usage(ctx, &mut signals);
    Ok(signals)
}
