//! A scorer that recurses without end: stopped by the Wasm stack limit.
use vigil_sdk::prelude::*;

fn descend(depth: u64, trail: &mut [u64; 64]) -> u64 {
    trail[(depth % 64) as usize] = depth;
    std::hint::black_box(descend(depth + 1, trail)) + trail[0]
}

#[vigil_sdk::scorer(
    name = "stack-bomb",
    description = "Recurses for ever.",
    fuel = 1_000_000_000_000,
    score = "deep",
    factors = ["depth"]
)]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let mut trail = [0u64; 64];
    let depth = descend(0, &mut trail);
    Ok(ScoreCardBuilder::new("deep")
        .factor("depth", 1.0, depth as f64, 50.0, "")
        .build(health_band))
}
