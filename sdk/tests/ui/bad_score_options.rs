use vigil_sdk::prelude::*;

#[vigil_sdk::trigger(name = "ok", factors = ["usage"])]
fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    Ok(vec![])
}

#[vigil_sdk::scorer(score = "health", factors = ["usage", "usage"])]
fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health").build(health_band))
}

#[vigil_sdk::scorer(score = "health", bands = ["ok\n"])]
fn banded(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health").build(health_band))
}

#[vigil_sdk::scorer(score = "health", bands = [])]
fn unbanded(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("health").build(health_band))
}

fn main() {}
