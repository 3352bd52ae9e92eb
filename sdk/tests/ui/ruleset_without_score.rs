use vigil_sdk::prelude::*;

pub struct Rules;

#[vigil_sdk::ruleset(name = "ok")]
impl Ruleset for Rules {
    fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
        Ok(ScoreCardBuilder::new("x").build(health_band))
    }

    fn evaluate(_ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        Ok(vec![])
    }

    fn check(_ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        Err(PluginError::Internal("unused".into()))
    }
}

fn main() {}
