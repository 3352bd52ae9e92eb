use vigil_sdk::prelude::*;

pub struct Rules;

// A ruleset declares its score, its tags and the windows its rules read.
#[vigil_sdk::ruleset(
    name = "seat-rules",
    score = "seat-usage",
    factors = ["usage"],
    tags = ["self-service-first"],
    windows = [("logins", 30, 0)]
)]
impl Ruleset for Rules {
    fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
        let usage = ratio(ctx.account.active_users, ctx.account.licensed_seats);
        Ok(ScoreCardBuilder::new("seat-usage")
            .factor("usage", 1.0, usage, usage * 100.0, "seat usage")
            .build(health_band))
    }

    fn evaluate(_ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        Ok(vec![])
    }

    fn check(_ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        Ok(Verdict {
            applies: true,
            reason: "applies".into(),
            policy_tags: vec!["self-service-first".into()],
        })
    }
}

fn main() {}
