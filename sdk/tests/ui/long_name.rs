use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(
    name = "a-plugin-name-of-sixty-five-characters-that-is-one-past-the-limit",
    score = "health"
)]
fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health").build(health_band))
}

fn main() {}
