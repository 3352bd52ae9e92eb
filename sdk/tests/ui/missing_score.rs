use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "ok", factors = ["usage"])]
fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("x").build(health_band))
}

fn main() {}
