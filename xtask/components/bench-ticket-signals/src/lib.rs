//! The bench rule set's third trigger (xtask/src/rules.rs): the support
//! ticket spike.
use vigil_sdk::prelude::*;

/// A spike of support tickets in the last 7 days.
#[vigil_sdk::trigger(
    name = "bench-ticket-signals",
    description = "Bench rule set: support ticket spike.",
    fuel = 2_000_000,
    windows = [("support.ticket.opened", 7, 0), ("support.ticket.opened", 28, 7)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let recent = window("support.ticket.opened", 7, 0).count;
    let baseline = f64::from(window("support.ticket.opened", 28, 7).count) / 4.0;
    if recent >= 3 && f64::from(recent) > 2.0 * baseline {
        // No cooldown: every signal reaches the condition on every event.
        return Ok(vec![
            SignalBuilder::new(ctx, "support.ticket-spike", Severity::High, "bench rule")
                .cooldown_hours(0)
                .build(),
        ]);
    }
    Ok(Vec::new())
}
