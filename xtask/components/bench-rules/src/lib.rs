//! The bench rule set (xtask/src/rules.rs) as functions: the health score,
//! the three triggers and the tier condition. Each bench component runs
//! one of them; `bench-signals` runs the three triggers in one plugin and
//! `bench-ruleset` all five in one contract 0.7 ruleset, so that the bench
//! can time the same rules as five plugin items an event (six or seven,
//! with a check item for each signal), as three and as one. A component
//! that calls one of them declares the windows it reads (`window` answers
//! only declared ones).
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

/// Reading of a factor without data.
const NEUTRAL: f64 = 50.0;

/// The health score card: the standard `health-score` plugin's factors,
/// weights and readings, with fixed notes. Reads the windows
/// `("logins", 30, 0)`, `("logins", 30, 30)`, `("support.ticket.opened",
/// 30, 0)`, `("nps", 90, 0)`, `("sentiment", 90, 0)` and
/// `("payment-days-overdue", 90, 0)`.
pub fn health_score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let account = &ctx.account;
    if account.licensed_seats == 0 {
        return Err(PluginError::InvalidInput("no licensed seats".into()));
    }
    let usage = ratio(account.active_users, account.licensed_seats);

    let recent = window("logins", 30, 0);
    let earlier = window("logins", 30, 30);
    let (login_change, login_reading) = if earlier.is_empty() || earlier.sum <= 0.0 {
        if recent.sum > 0.0 {
            (1.0, 100.0)
        } else {
            (0.0, NEUTRAL)
        }
    } else {
        let change = recent.sum / earlier.sum - 1.0;
        let reading = if change >= 0.0 {
            75.0 + change * 100.0
        } else {
            75.0 + change * 150.0
        };
        (change, reading)
    };

    let tickets = window("support.ticket.opened", 30, 0).count;
    let per_100_seats = f64::from(tickets) * 100.0 / f64::from(account.licensed_seats);

    let nps = window("nps", 90, 0).mean();
    let sentiment = window("sentiment", 90, 0).mean();
    let (sentiment_raw, sentiment_reading) = match (nps, sentiment) {
        (Some(rating), Some(s)) => (rating, (rating * 10.0 + (s + 1.0) * 50.0) / 2.0),
        (Some(rating), None) => (rating, rating * 10.0),
        (None, Some(s)) => (s, (s + 1.0) * 50.0),
        (None, None) => (0.0, NEUTRAL),
    };

    let overdue_days = window("payment-days-overdue", 90, 0);
    let overdue = if overdue_days.is_empty() {
        0.0
    } else {
        overdue_days.last.max(0.0)
    };

    let mut card = ScoreCardBuilder::new("health")
        .factor("usage", 0.30, usage, usage * 125.0, "seat usage")
        .factor(
            "login-trend",
            0.20,
            login_change,
            login_reading,
            "login trend",
        )
        .factor(
            "support-load",
            0.15,
            per_100_seats,
            100.0 - per_100_seats * 5.0,
            "support load",
        )
        .factor(
            "sentiment",
            0.20,
            sentiment_raw,
            sentiment_reading,
            "sentiment",
        )
        .factor(
            "payment-health",
            0.15,
            overdue,
            100.0 - overdue * 100.0 / 60.0,
            "payment health",
        )
        .build(health_band);
    // Rounded to 9 decimals before banding, as the rule set says, so that
    // binary and decimal arithmetic band a score alike.
    card.value = (card.value * 1e9).round() / 1e9;
    let (band, rag) = health_band(card.value);
    card.band = band.into();
    card.rag = rag;
    Ok(card)
}

const RENEWAL_WINDOW_MS: i64 = 90 * DAY_MS;

/// Whether the signal applies, and the account's policy tags: the standard
/// `tier-conditions` plugin's, with a fixed reason.
pub fn tier(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    let account = &ctx.account;
    let tier: &[&str] = match account.tier {
        Tier::Enterprise => &[
            "monitoring-24x7",
            "dedicated-csm",
            "executive-business-review",
            "custom-metrics",
            "executive-notification",
        ],
        Tier::MidMarket => &[
            "business-hours-monitoring",
            "shared-csm",
            "quarterly-review",
            "standard-metrics",
        ],
        Tier::SmallBusiness => &[
            "automated-monitoring",
            "self-service-first",
            "biannual-check-in",
            "basic-metrics",
        ],
    };
    let industry: &[&str] = match account.industry {
        Industry::Healthcare => &["hipaa", "fda", "security-audit", "training-certification"],
        Industry::FinancialServices => &["sox", "pci-dss", "audit-trail", "risk-assessment"],
        Industry::ECommerce => &["revenue-impact", "seasonality-planning"],
        _ => &[],
    };
    let contract: &[&str] = match account.renewal_date.map(|r| r - ctx.now) {
        Some(left) if left < 0 => &["renewal-overdue"],
        Some(left) if left <= RENEWAL_WINDOW_MS => &["renewal-window"],
        _ => &[],
    };
    let policy_tags = tier
        .iter()
        .chain(industry)
        .chain(contract)
        .map(|tag| Tag::Borrowed(tag))
        .collect();
    let applies = !(account.tier == Tier::SmallBusiness && signal.severity == Severity::Info);
    Ok(Verdict {
        applies,
        reason: if applies {
            "applies"
        } else {
            "left to self-service"
        }
        .to_string(),
        policy_tags,
    })
}
