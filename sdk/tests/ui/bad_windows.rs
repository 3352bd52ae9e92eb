use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "ok", windows = ["logins"])]
fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("x").build(health_band))
}

#[vigil_sdk::trigger(name = "ok", windows = [("", 7, 0)])]
fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    Ok(Vec::new())
}

#[vigil_sdk::trigger(name = "ok", windows = [("logins", 7, -1)])]
fn negative(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    Ok(Vec::new())
}

fn main() {}
