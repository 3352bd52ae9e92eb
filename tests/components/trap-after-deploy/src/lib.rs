//! A `health-score` version 9.0.0 that passes its canary run (fixture
//! events score 60) and traps on a live event whose payload has
//! `"poison": true`: the kind of bug the circuit breaker is for.
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(
    name = "health-score",
    version = "9.0.0",
    description = "Scores 60; traps on poisoned events.",
    score = "health",
    factors = ["constant"]
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    if ctx.event.payload.contains("\"poison\":true") {
        panic!("poisoned event {}", ctx.event.id);
    }
    Ok(ScoreCardBuilder::new("health")
        .factor("constant", 1.0, 60.0, 60.0, "always 60")
        .build(health_band))
}
