//! A scorer that returns a 1 MiB note: rejected by the output cap.
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "oversized-output", description = "Returns too much.", score = "health", factors = ["bloat"])]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health")
        .factor("bloat", 1.0, 0.0, 50.0, "x".repeat(1 << 20))
        .build(health_band))
}
