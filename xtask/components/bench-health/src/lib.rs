//! The bench rule set's health score (xtask/src/rules.rs), its rules in
//! `bench-rules`: the standard `health-score` plugin's factors, weights and
//! readings, with fixed notes.
use vigil_sdk::prelude::*;

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
    bench_rules::health_score(ctx)
}
