//! A contract 0.4 trigger written without the SDK whose packed results lie
//! for the account `liar`: that context's signal names a span past the end
//! of the returned text. Every other context gets one well-formed signal,
//! so the tests can check that the host refuses only the lying item.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.4.0", world: "trigger" });
}

use bindings::exports::vigil::plugin::{meta, triggering};
use bindings::vigil::plugin::batching;
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    PackedContexts, PackedSignal, PackedSignals, PluginInfo, PluginKind, Severity, Span,
};

struct SpanLiar;

impl meta::Guest for SpanLiar {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "span-liar".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Trigger,
            description: "Points one signal outside its text.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: Vec::new(),
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

impl triggering::Guest for SpanLiar {
    fn evaluate(contexts: PackedContexts, _windows: Vec<MetricWindow>) -> PackedSignals {
        let mut text = String::new();
        let mut results = Vec::new();
        let mut signals = Vec::new();
        for (index, context) in contexts.contexts.iter().enumerate() {
            batching::begin(index as u32);
            let id = context.account_id;
            let account = &contexts.text[id.start as usize..(id.start + id.len) as usize];
            let mut name = push(&mut text, "liar.checked");
            if account == "liar" {
                name.len = 1 << 20;
            }
            let key = format!("liar.checked:{account}");
            let signal = PackedSignal {
                name,
                severity: Severity::Low,
                reason: push(&mut text, "every account is checked"),
                dedup_key: push(&mut text, &key),
                cooldown_secs: 0,
            };
            results.push(Ok(Span {
                start: signals.len() as u32,
                len: 1,
            }));
            signals.push(signal);
        }
        batching::end();
        PackedSignals {
            text,
            results,
            signals,
        }
    }
}

bindings::export!(SpanLiar with_types_in bindings);
