use vigil_sdk::prelude::*;

// 64 characters: the longest name the host takes.
#[vigil_sdk::scorer(
    name = "a-plugin-name-of-sixty-four-characters-that-is-just-at-the-limit",
    score = "health"
)]
fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health").build(health_band))
}

fn main() {}
