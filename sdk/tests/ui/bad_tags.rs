use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "ok", tags = ["hipaa"])]
fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    Ok(ScoreCardBuilder::new("x").build(health_band))
}

#[vigil_sdk::condition(name = "ok", tags = ["sox", "hipaa", "sox"])]
fn twice(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    Ok(Verdict {
        applies: true,
        reason: String::new(),
        policy_tags: vec![],
    })
}

#[vigil_sdk::condition(name = "ok", tags = [""])]
fn empty(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    Ok(Verdict {
        applies: true,
        reason: String::new(),
        policy_tags: vec![],
    })
}

#[vigil_sdk::condition(name = "ok", tags = [sox])]
fn unquoted(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    Ok(Verdict {
        applies: true,
        reason: String::new(),
        policy_tags: vec![],
    })
}

fn main() {}
