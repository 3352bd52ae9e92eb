//! A well-behaved contract 0.3 scorer written without the SDK (which now
//! builds against 0.4): it declares the window it reads, takes it from what
//! `batching.begin` returns for each item, and ends the batch, so the tests
//! can check that the host still runs plugins built against 0.3.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.3.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::batching;
use bindings::vigil::plugin::types::{
    Factor, PackedContexts, PluginError, PluginInfo, PluginKind, Rag, ScoreCard, WindowSpec,
};

struct LoginScorer;

impl meta::Guest for LoginScorer {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v03-scorer".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "Logins of the last 30 days as a score, on contract 0.3.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: vec![WindowSpec {
                metric: "logins".into(),
                days: 30,
                offset_days: 0,
            }],
        }
    }
}

impl scoring::Guest for LoginScorer {
    fn score(contexts: PackedContexts) -> Vec<Result<ScoreCard, PluginError>> {
        let cards = (0..contexts.contexts.len())
            .map(|index| {
                let windows = batching::begin(u32::try_from(index).unwrap_or(u32::MAX));
                let Some(logins) = windows.first().map(|window| window.sum) else {
                    return Err(PluginError::Internal(
                        "begin returned no declared window".into(),
                    ));
                };
                let value = logins.clamp(0.0, 100.0);
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
