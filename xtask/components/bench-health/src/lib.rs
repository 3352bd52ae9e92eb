//! The bench rule set's health score (xtask/src/rules.rs): the standard
//! `health-score` plugin's factors, weights and readings, with fixed notes.
use vigil_sdk::prelude::*;

/// Reading of a factor without data.
const NEUTRAL: f64 = 50.0;

/// The health score card.
#[vigil_sdk::scorer(
    name = "bench-health",
    description = "Bench rule set: the health score.",
    fuel = 2_000_000,
    score = "health",
    factors = ["usage", "login-trend", "support-load", "sentiment", "payment-health"],
    windows = [
        ("logins", 30, 0),
        ("logins", 30, 30),
        ("support.ticket.opened", 30, 0),
        ("nps", 90, 0),
        ("sentiment", 90, 0),
        ("payment-days-overdue", 90, 0),
    ]
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
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
