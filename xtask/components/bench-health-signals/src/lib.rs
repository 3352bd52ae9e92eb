//! The bench rule set's first trigger (xtask/src/rules.rs), its rules in
//! `bench-rules`: the health band signal, health below 60 and the
//! downward health trend.
use vigil_sdk::prelude::*;

/// Signals from the health score of this evaluation.
#[vigil_sdk::trigger(
    name = "bench-health-signals",
    description = "Bench rule set: health band, below 60, downward trend.",
    fuel = 2_000_000,
    windows = [("health", 30, 7)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    bench_rules::health(ctx, &mut signals);
    Ok(signals)
}
