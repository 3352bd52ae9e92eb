use vigil_sdk::prelude::*;

#[vigil_sdk::scorer]
async fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("x").build(health_band))
}

fn main() {}
