//! A trigger that returns 1,000 tiny signals: each would fan out into
//! condition and action calls, so the host refuses more than its list cap.
use vigil_sdk::prelude::*;

#[vigil_sdk::trigger(name = "signal-flood", description = "Floods signals.")]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    Ok((0..1000)
        .map(|n| SignalBuilder::new(ctx, &format!("s{n}"), Severity::Low, "").build())
        .collect())
}
