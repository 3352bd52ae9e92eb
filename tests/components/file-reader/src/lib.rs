//! A scorer that tries to read a file: refused at load (wasi:filesystem).
use vigil_sdk::prelude::*;

#[vigil_sdk::scorer(name = "file-reader", description = "Reads /etc/passwd.", score = "health", factors = ["leak"])]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let secret = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Ok(ScoreCardBuilder::new("health")
        .factor("leak", 1.0, secret.len() as f64, 0.0, secret)
        .build(health_band))
}
