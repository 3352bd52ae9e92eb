//! The bench rule set's first trigger (xtask/src/rules.rs): the health band
//! signal, health below 60 and the downward health trend.
use vigil_sdk::prelude::*;

fn signal(ctx: &Context<'_>, name: &str, severity: Severity) -> Signal {
    // No cooldown: every signal reaches the condition on every event.
    SignalBuilder::new(ctx, name, severity, "bench rule")
        .cooldown_hours(0)
        .build()
}

/// Signals from the health score of this evaluation.
#[vigil_sdk::trigger(
    name = "bench-health-signals",
    description = "Bench rule set: health band, below 60, downward trend.",
    fuel = 2_000_000,
    windows = [("health", 30, 7)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let Some(h) = ctx
        .scores
        .iter()
        .find(|s| s.name == "health")
        .map(|s| s.value)
    else {
        return Ok(Vec::new());
    };
    let (name, severity) = if h < 30.0 {
        ("health.critical", Severity::Critical)
    } else if h < 50.0 {
        ("health.declining", Severity::High)
    } else if h <= 70.0 {
        ("health.stable", Severity::Low)
    } else {
        ("health.optimal", Severity::Info)
    };
    let mut signals = vec![signal(ctx, name, severity)];
    if h < 60.0 {
        signals.push(signal(ctx, "health.below-60", Severity::High));
    }
    if let Some(baseline) = window("health", 30, 7).mean()
        && baseline > 0.0
        && (baseline - h) / baseline >= 0.20
    {
        signals.push(signal(ctx, "health.trend-down", Severity::High));
    }
    Ok(signals)
}
