//! A contract 0.5 scorer written without the SDK: 0.4's scorer (see
//! `v04-scorer`) built against 0.5, whose score cards are 0.4's, so the
//! tests keep a 0.5 scorer loading and scoring once the SDK has moved on.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.5.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::batching;
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    PackedContexts, PackedFactor, PackedScoreCard, PackedScoreCards, PluginError, PluginInfo,
    PluginKind, Rag, Span, WindowSpec,
};

struct LoginScorer;

impl meta::Guest for LoginScorer {
    fn describe() -> PluginInfo {
        let window = |offset_days| WindowSpec {
            metric: "logins".into(),
            days: 30,
            offset_days,
        };
        PluginInfo {
            name: "v05-scorer".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "Logins of the last 30 days as a score, on contract 0.5.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: vec![window(0), window(30)],
            policy_tags: Vec::new(),
        }
    }
}

/// Appends `value` to `text`; its span there.
fn push(text: &mut String, value: &str) -> Span {
    let start = text.len() as u32;
    text.push_str(value);
    Span {
        start,
        len: value.len() as u32,
    }
}

impl scoring::Guest for LoginScorer {
    fn score(contexts: PackedContexts, windows: Vec<MetricWindow>) -> PackedScoreCards {
        let mut text = String::new();
        let mut results = Vec::new();
        let mut factors = Vec::new();
        for index in 0..contexts.contexts.len() {
            batching::begin(index as u32);
            let Some(logins) = windows.get(2 * index).map(|window| window.sum) else {
                results.push(Err(PluginError::Internal(format!(
                    "no window for item {index} among {}",
                    windows.len()
                ))));
                continue;
            };
            let value = logins.clamp(0.0, 100.0);
            let band = if value >= 50.0 { "high" } else { "low" };
            factors.push(PackedFactor {
                name: push(&mut text, "logins"),
                weight: 1.0,
                raw: logins,
                value,
                contribution: value,
                note: push(&mut text, "logins in the last 30 days"),
            });
            results.push(Ok(PackedScoreCard {
                name: push(&mut text, "login-score"),
                value,
                band: push(&mut text, band),
                rag: if value >= 50.0 { Rag::Green } else { Rag::Red },
                factors: Span {
                    start: factors.len() as u32 - 1,
                    len: 1,
                },
            }));
        }
        batching::end();
        PackedScoreCards {
            text,
            results,
            factors,
        }
    }
}

bindings::export!(LoginScorer with_types_in bindings);
