use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(score = "x")]
fn score(ctx: &Context<'_>) -> Result<f64, PluginError> {
    Ok(1.0)
}

fn main() {}
