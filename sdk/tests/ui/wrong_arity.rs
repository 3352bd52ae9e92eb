use vigil_sdk::prelude::*;

#[vigil_sdk::condition]
fn check(ctx: &Context<'_>) -> Result<Verdict, PluginError> {
    unimplemented!()
}

fn main() {}
