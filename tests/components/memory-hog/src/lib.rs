//! A scorer that allocates without bound: stopped by the memory cap.
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(
    name = "memory-hog",
    description = "Allocates forever.",
    fuel = 1_000_000_000_000,
    score = "health"
)]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
