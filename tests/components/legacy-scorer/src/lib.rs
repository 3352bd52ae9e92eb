//! A scorer built against contract 0.1.0 with plain wit-bindgen, as a
//! plugin released before 0.2 was: one `score(ctx)` call per event. The
//! host must keep loading and calling it. Scores 10 points per login in
//! the last 30 days (at most 100).
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::history::window;
use bindings::vigil::plugin::types::{
    Context, Factor, PluginError, PluginInfo, PluginKind, Rag, ScoreCard,
};

struct Legacy;

impl meta::Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-scorer".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "A contract 0.1 scorer: 10 points per login in 30 days.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
        }
    }
}

impl scoring::Guest for Legacy {
    fn score(ctx: Context) -> Result<ScoreCard, PluginError> {
        if ctx.account.id.is_empty() {
            return Err(PluginError::InvalidInput("no account".into()));
        }
        let logins = window("login", 30, 0);
        let value = (f64::from(logins.count) * 10.0).min(100.0);
        Ok(ScoreCard {
            name: "legacy".into(),
            value,
            band: if value >= 50.0 { "engaged" } else { "quiet" }.into(),
            rag: if value >= 50.0 { Rag::Green } else { Rag::Red },
            factors: vec![Factor {
                name: "logins".into(),
                weight: 1.0,
                raw: f64::from(logins.count),
                value,
                contribution: value,
                note: format!("{} logins in 30 days", logins.count),
            }],
        })
    }
}

bindings::export!(Legacy with_types_in bindings);
