//! A scorer whose output depends on the clock and on randomness: the host
//! makes both deterministic (evaluation time, per-invocation seed).
use std::time::{SystemTime, UNIX_EPOCH};
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(
    name = "clock-and-dice",
    description = "Reads the clock and rolls dice.",
    score = "dice",
    factors = ["clock", "order"]
)]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(-1.0);
    let mut map = std::collections::HashMap::new();
    for i in 0..16 {
        map.insert(i, i);
    }
    // HashMap iteration order comes from the seeded RandomState.
    let order: f64 = map.keys().take(4).map(|k| *k as f64).sum();
    Ok(ScoreCardBuilder::new("dice")
        .factor("clock", 0.5, clock, 50.0, format!("clock {clock}"))
        .factor(
            "order",
            0.5,
            order,
            order,
            format!("first keys sum {order}"),
        )
        .build(health_band))
}
