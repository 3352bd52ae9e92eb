use vigil_sdk::prelude::*;

#[vigil_sdk::trigger]
fn evaluate(ctx: Context) -> Result<Vec<Signal>, PluginError> {
    Ok(vec![])
}

fn main() {}
