//! The bench rule set's three triggers (xtask/src/rules.rs) as functions:
//! each trigger component runs one of them, and `bench-signals` runs all
//! three in one plugin, so that the bench can time the same rules as three
//! plugin items an event and as one. A component that calls one of them
//! declares the windows it reads (`window` answers only declared ones).
use vigil_sdk::prelude::*;

fn signal(ctx: &Context<'_>, name: &str, severity: Severity) -> Signal {
    // No cooldown: every signal reaches the condition on every event.
    SignalBuilder::new(ctx, name, severity, "bench rule")
        .cooldown_hours(0)
        .build()
}

/// The health band signal, health below 60 and the downward health trend,
/// from the health score of this evaluation. Reads the window
/// `("health", 30, 7)`.
pub fn health(ctx: &Context<'_>, signals: &mut Vec<Signal>) {
    let Some(h) = ctx
        .scores
        .iter()
        .find(|s| s.name == "health")
        .map(|s| s.value)
    else {
        return;
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
    signals.push(signal(ctx, name, severity));
    if h < 60.0 {
        signals.push(signal(ctx, "health.below-60", Severity::High));
    }
    if let Some(baseline) = window("health", 30, 7).mean()
        && baseline > 0.0
        && (baseline - h) / baseline >= 0.20
    {
        signals.push(signal(ctx, "health.trend-down", Severity::High));
    }
}

/// No usage, low seat usage and the login decline. Reads the windows
/// `("logins", 30, 0)` and `("logins", 30, 30)`.
pub fn usage(ctx: &Context<'_>, signals: &mut Vec<Signal>) {
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
}

/// A spike of support tickets in the last 7 days. Reads the windows
/// `("support.ticket.opened", 7, 0)` and `("support.ticket.opened", 28, 7)`.
pub fn ticket(ctx: &Context<'_>, signals: &mut Vec<Signal>) {
    let recent = window("support.ticket.opened", 7, 0).count;
    let baseline = f64::from(window("support.ticket.opened", 28, 7).count) / 4.0;
    if recent >= 3 && f64::from(recent) > 2.0 * baseline {
        signals.push(signal(ctx, "support.ticket-spike", Severity::High));
    }
}
