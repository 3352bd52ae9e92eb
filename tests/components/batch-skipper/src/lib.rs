//! A contract 0.2 scorer written without the SDK that answers its batch
//! without calling `batching.begin`, so every item would run with the
//! first item's clock, history and budget. The host refuses the answer.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.2.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::types::{Context, PluginError, PluginInfo, PluginKind, Rag, ScoreCard};

struct Skipper;

impl meta::Guest for Skipper {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "batch-skipper".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "Answers a batch without beginning its items.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
        }
    }
}

impl scoring::Guest for Skipper {
    fn score(contexts: Vec<Context>) -> Vec<Result<ScoreCard, PluginError>> {
        contexts
            .iter()
            .map(|_| {
                Ok(ScoreCard {
                    name: "skipped".into(),
                    value: 50.0,
                    band: "middle".into(),
                    rag: Rag::Yellow,
                    factors: Vec::new(),
                })
            })
            .collect()
    }
}

bindings::export!(Skipper with_types_in bindings);
