//! A scorer that sleeps for an hour, then forever: a plugin's clock does not
//! move, so the sleeps return at once and cannot park a host thread.
use std::time::{Duration, Instant};
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "sleeper", description = "Sleeps.", score = "sleep", factors = ["slept"])]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3600));
    std::thread::sleep(Duration::MAX);
    let slept = started.elapsed().as_secs_f64();
    Ok(ScoreCardBuilder::new("sleep")
        .factor("slept", 1.0, slept, 50.0, format!("slept {slept} s"))
        .build(health_band))
}
