//! A scorer that panics for the account `boom` or an event of kind
//! `test.boom`, and scores 50 otherwise.
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "panicker", description = "Panics on account boom.", score = "health", factors = ["constant"])]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    if ctx.account.id == "boom" || ctx.event.kind == "test.boom" {
        panic!("account boom is not supported");
    }
    Ok(ScoreCardBuilder::new("health")
        .factor("constant", 1.0, 50.0, 50.0, "always 50")
        .build(health_band))
}
