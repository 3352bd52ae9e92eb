//! A contract 0.6 scorer written without the SDK: it declares two scores
//! (`login-score`, bands `low` and `high`, factors `logins` and `streak`;
//! `activity`, bands `quiet` and `busy`, factor `sessions`) and two
//! windows, reads the first of each item's pair from the batch's `windows`
//! (item `i`'s at `2 * i`), and packs its cards by hand, naming the score,
//! band and factor by position, so the tests can check 0.6's layout apart
//! from the SDK.
//!
//! Most accounts get a `login-score` card of one `logins` factor, banded
//! `high` (and green) from 50 logins. An account whose id starts with
//! `streak` gets the `streak` factor instead, `busy` an `activity` card
//! banded `busy`, `liar` a card naming factor 7 (not declared), `twice` a
//! card listing `logins` twice, and `failing` a plugin error.
//!
//! Its configuration can make it declare scores the host must refuse at
//! load: `declare` = `nothing` (no score at all), `twice` (a score declared
//! twice), `no-band` (a score without bands).
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.6.0", world: "scorer" });
}

use bindings::exports::vigil::plugin::{meta, scoring};
use bindings::vigil::plugin::{batching, host};
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    PackedContexts, PackedFactor, PackedScoreCard, PackedScoreCards, PluginError, PluginInfo,
    PluginKind, Rag, ScoreInfo, Span, WindowSpec,
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
            name: "v06-scorer".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Scorer,
            description: "Logins of the last 30 days as a score, on contract 0.6.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: vec![window(0), window(30)],
            policy_tags: Vec::new(),
            scores: declared(host::config("declare").as_deref()),
        }
    }
}

/// A declared score.
fn score(name: &str, bands: &[&str], factors: &[&str]) -> ScoreInfo {
    let names = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
    ScoreInfo {
        name: name.into(),
        bands: names(bands),
        factors: names(factors),
    }
}

/// The scores to declare: the two above, or what the configuration's
/// `declare` asks for.
fn declared(declare: Option<&str>) -> Vec<ScoreInfo> {
    let logins = score("login-score", &["low", "high"], &["logins", "streak"]);
    match declare {
        Some("nothing") => Vec::new(),
        Some("twice") => vec![logins.clone(), logins],
        Some("no-band") => vec![score("login-score", &[], &["logins"])],
        _ => vec![logins, score("activity", &["quiet", "busy"], &["sessions"])],
    }
}

/// The account id of context `index`.
fn account_id(contexts: &PackedContexts, index: usize) -> &str {
    let span = contexts.contexts[index].account_id;
    &contexts.text[span.start as usize..(span.start + span.len) as usize]
}

impl scoring::Guest for LoginScorer {
    fn score(contexts: PackedContexts, windows: Vec<MetricWindow>) -> PackedScoreCards {
        let mut text = String::new();
        let mut results = Vec::new();
        let mut factors = Vec::new();
        for index in 0..contexts.contexts.len() {
            batching::begin(index as u32);
            let account = account_id(&contexts, index);
            if account == "failing" {
                results.push(Err(PluginError::InsufficientData(
                    "no logins yet".into(),
                )));
                continue;
            }
            let Some(logins) = windows.get(2 * index).map(|window| window.sum) else {
                results.push(Err(PluginError::Internal(format!(
                    "no window for item {index} among {}",
                    windows.len()
                ))));
                continue;
            };
            let busy = account.starts_with("busy");
            let value = if busy { 100.0 } else { logins.clamp(0.0, 100.0) };
            let high = value >= 50.0;
            let note = format!("{logins} logins in the last 30 days");
            let start = text.len() as u32;
            text.push_str(&note);
            let first = factors.len() as u32;
            let listed = if account.starts_with("twice") { 2 } else { 1 };
            for _ in 0..listed {
                factors.push(PackedFactor {
                    factor: if account.starts_with("liar") {
                        7
                    } else if account.starts_with("streak") {
                        1
                    } else {
                        0
                    },
                    weight: 1.0 / f64::from(listed),
                    raw: logins,
                    value,
                    contribution: value / f64::from(listed),
                    note: Span {
                        start,
                        len: note.len() as u32,
                    },
                });
            }
            results.push(Ok(PackedScoreCard {
                score: u32::from(busy),
                value,
                band: u32::from(high),
                rag: if high { Rag::Green } else { Rag::Red },
                factors: Span {
                    start: first,
                    len: listed,
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
