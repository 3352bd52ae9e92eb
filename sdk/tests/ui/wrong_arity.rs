use vigil_sdk::prelude::*;

#[vigil_sdk::condition]
fn check(ctx: &Context) -> Result<Verdict, PluginError> {
    unimplemented!()
}

fn main() {}
