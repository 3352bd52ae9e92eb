//! A scorer whose output depends on the clock and on randomness: the host
//! makes both deterministic (evaluation time, per-invocation seed).
//!
//! `order` comes from a `HashMap`'s keys, which `std` seeds from
//! `wasi:random/insecure-seed` (a fixed value); `draw` is drawn from
//! `wasi:random/random`, the stream the host seeds from each evaluation.
use std::time::{SystemTime, UNIX_EPOCH};
use vigil_sdk::prelude::*;

mod random {
    // WASI 0.2.0's `random` as it is (`std` links the same package; the
    // two must agree); the host serves it by semver matching.
    wit_bindgen::generate!({
        inline: r#"
            package vigil-test:dice;

            world draws {
                import wasi:random/random@0.2.0;
            }

            package wasi:random@0.2.0 {
                interface random {
                    get-random-bytes: func(len: u64) -> list<u8>;
                    get-random-u64: func() -> u64;
                }
            }
        "#,
        world: "vigil-test:dice/draws",
        generate_all,
    });
}

#[vigil_sdk::scorer(
    name = "clock-and-dice",
    description = "Reads the clock and rolls dice.",
    score = "dice",
    factors = ["clock", "order", "draw"]
)]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(-1.0);
    let mut map = std::collections::HashMap::new();
    for i in 0..16 {
        map.insert(i, i);
    }
    // HashMap iteration order comes from `std`'s RandomState.
    let order: f64 = map.keys().take(4).map(|k| *k as f64).sum();
    // The top 53 bits: a whole number an f64 holds exactly.
    let draw = (random::wasi::random::random::get_random_u64() >> 11) as f64;
    Ok(ScoreCardBuilder::new("dice")
        .factor("clock", 0.5, clock, 50.0, format!("clock {clock}"))
        .factor(
            "order",
            0.5,
            order,
            order,
            format!("first keys sum {order}"),
        )
        .factor("draw", 0.0, draw, 0.0, format!("drew {draw}"))
        .build(health_band))
}
