//! The bench rule set's second trigger (xtask/src/rules.rs): no usage, low
//! seat usage and the login decline.
use vigil_sdk::prelude::*;

fn signal(ctx: &Context<'_>, name: &str, severity: Severity) -> Signal {
    // No cooldown: every signal reaches the condition on every event.
    SignalBuilder::new(ctx, name, severity, "bench rule")
        .cooldown_hours(0)
        .build()
}

/// Signals from seat usage and logins.
#[vigil_sdk::trigger(
    name = "bench-usage-signals",
    description = "Bench rule set: no usage, low usage, login decline.",
    fuel = 2_000_000,
    windows = [("logins", 30, 0), ("logins", 30, 30)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    let (seats, active) = (ctx.account.licensed_seats, ctx.account.active_users);
    if seats > 0 {
        if active == 0 {
            signals.push(signal(ctx, "usage.none", Severity::Critical));
        } else if ratio(active, seats) < 0.30 {
            signals.push(signal(ctx, "usage.low", Severity::Medium));
        }
    }
    let recent = window("logins", 30, 0).sum;
    let earlier = window("logins", 30, 30).sum;
    if earlier > 0.0 && recent < 0.5 * earlier {
        signals.push(signal(ctx, "usage.login-decline", Severity::High));
    }
    Ok(signals)
}
