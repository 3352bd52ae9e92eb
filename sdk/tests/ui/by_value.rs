use vigil_sdk::prelude::*;

#[vigil_sdk::trigger]
fn evaluate(ctx: Context<'_>) -> Result<Vec<Signal>, PluginError> {
    Ok(vec![])
}

fn main() {}
