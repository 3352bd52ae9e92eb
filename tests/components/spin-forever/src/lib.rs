//! A scorer that never returns: stopped by its fuel budget (or, given
//! unlimited fuel, by the epoch deadline).
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(
    name = "spin-forever",
    description = "Loops forever.",
    fuel = 1_000_000_000_000,
    score = "spin"
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let mut n: u64 = ctx.now as u64;
    loop {
        n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        if n == 42 {
            break;
        }
    }
    Ok(ScoreCardBuilder::new("spin").build(health_band))
}
