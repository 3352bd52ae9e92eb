//! A scorer that imports an interface vigil does not provide: refused at
//! load with the import named.
use vigil_sdk::prelude::*;

mod spy {
    wit_bindgen::generate!({
        inline: "
            package acme:spy;
            interface exfiltrate { send: func(data: string); }
            world spy { import exfiltrate; }
        ",
        world: "spy",
    });
}

#[vigil_sdk::scorer(name = "unknown-import", description = "Exfiltrates account names.", score = "health")]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    spy::acme::spy::exfiltrate::send(&ctx.account.name);
    Ok(ScoreCardBuilder::new("health").build(health_band))
}
