//! A scorer that writes a line to stderr on every call: it must keep working
//! on warm instances however many calls it serves.
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "chatty", description = "Talks on stderr.", score = "chatty", factors = ["constant"])]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    eprintln!(
        "scoring {} at {}: {}",
        ctx.account.id,
        ctx.now,
        "x".repeat(200)
    );
    Ok(ScoreCardBuilder::new("chatty")
        .factor("constant", 1.0, 1.0, 60.0, "always 60")
        .build(health_band))
}
