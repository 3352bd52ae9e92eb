//! A well-behaved contract 0.2 scorer written without the SDK (which now
//! builds against 0.3): it begins each item, reads the item's logins over
//! the `history` import and ends the batch, so the tests can check that
//! the host still runs plugins built against 0.2.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.2.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::types::{
    Context, Factor, PluginError, PluginInfo, PluginKind, Rag, ScoreCard,
};
use bindings::vigil::plugin::{batching, history};

struct LoginScorer;

impl meta::Guest for LoginScorer {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v02-scorer".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "Logins of the last 30 days as a score, on contract 0.2.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
        }
    }
}

impl scoring::Guest for LoginScorer {
    fn score(contexts: Vec<Context>) -> Vec<Result<ScoreCard, PluginError>> {
        let cards = (0..contexts.len())
            .map(|index| {
                batching::begin(u32::try_from(index).unwrap_or(u32::MAX));
                let logins = history::window("logins", 30, 0).sum;
                let value = logins.clamp(0.0, 100.0);
                // Not named `logins`: a score is recorded into the history
                // under its name, which would add to the logins read here.
                Ok(ScoreCard {
                    name: "login-score".into(),
                    value,
                    band: if value >= 50.0 { "high" } else { "low" }.into(),
                    rag: if value >= 50.0 { Rag::Green } else { Rag::Red },
                    factors: vec![Factor {
                        name: "logins".into(),
                        weight: 1.0,
                        raw: logins,
                        value,
                        contribution: value,
                        note: "logins in the last 30 days".into(),
                    }],
                })
            })
            .collect();
        batching::end();
        cards
    }
}

bindings::export!(LoginScorer with_types_in bindings);
