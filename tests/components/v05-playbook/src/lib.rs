//! A contract 0.5 playbook written without the SDK: it raises one signal
//! for every event, declares three policy tags and names them by bit in
//! its packed verdicts, and plans one notification whose summary lists the
//! tags the host hands back by name, so the tests can check 0.5's tags
//! apart from the SDK. Its scoring-free exports are 0.4's in structure.
//!
//! It declares 63 tags, the last 60 fillers (`filler-3` to `filler-62`),
//! so that the high bits are used: an account named `top` also gets bit
//! 62, the last declared tag; an account named `liar` gets bit 63, a tag
//! the plugin never declared, which the host must refuse; an account named
//! `failing` gets a plugin error instead of a verdict.
//!
//! Its configuration can make it declare tags the host must refuse at
//! load: `declare` = `twice` (a tag declared twice), `too-many` (65
//! tags) or `empty` (an empty tag).
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.5.0", world: "playbook" });
}

use bindings::exports::vigil::plugin::planning::PlanItem;
use bindings::exports::vigil::plugin::{conditioning, meta, planning, triggering};
use bindings::vigil::plugin::{batching, host};
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    Channel, Industry, Intent, IntentKind, Notify, PackedCheckItems, PackedContexts,
    PackedSignal, PackedSignals, PackedVerdict, PackedVerdicts, PluginError, PluginInfo,
    PluginKind, Severity, Span, Tier, Timing,
};

/// The named policy tags: bit `i` of a packed verdict is `TAGS[i]`; the
/// fillers after them are bits 3 to 62.
const TAGS: [&str; 3] = ["monitoring-24x7", "hipaa", "tagged-by-bit"];

/// How many tags the plugin declares.
const DECLARED: u32 = 63;

struct TaggedPlaybook;

impl meta::Guest for TaggedPlaybook {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v05-playbook".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Playbook,
            description: "Tags every event's signal by bit, on contract 0.5.".into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: Vec::new(),
            policy_tags: declared(host::config("declare").as_deref()),
        }
    }
}

/// The tags to declare: `DECLARED` of them, or what the configuration's
/// `declare` asks for.
fn declared(declare: Option<&str>) -> Vec<String> {
    let count = if declare == Some("too-many") { 65 } else { DECLARED };
    let mut tags: Vec<String> = (0..count)
        .map(|at| match TAGS.get(at as usize) {
            Some(tag) => tag.to_string(),
            None => format!("filler-{at}"),
        })
        .collect();
    match declare {
        Some("twice") => tags[5] = "hipaa".into(),
        Some("empty") => tags[7] = String::new(),
        _ => {}
    }
    tags
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

/// `text` at `span`.
fn at(text: &str, span: Span) -> &str {
    let start = span.start as usize;
    text.get(start..start + span.len as usize).unwrap_or("")
}

impl triggering::Guest for TaggedPlaybook {
    fn evaluate(contexts: PackedContexts, _windows: Vec<MetricWindow>) -> PackedSignals {
        let mut text = String::new();
        let mut results = Vec::new();
        let mut signals = Vec::new();
        for (index, context) in contexts.contexts.iter().enumerate() {
            batching::begin(index as u32);
            let event_id = at(&contexts.text, context.event_id).to_string();
            signals.push(PackedSignal {
                name: push(&mut text, "tagged.event"),
                severity: Severity::Medium,
                reason: push(&mut text, "every event"),
                dedup_key: push(&mut text, &event_id),
                cooldown_secs: 0,
            });
            results.push(Ok(Span {
                start: signals.len() as u32 - 1,
                len: 1,
            }));
        }
        batching::end();
        PackedSignals {
            text,
            results,
            signals,
        }
    }
}

impl conditioning::Guest for TaggedPlaybook {
    fn check(
        contexts: PackedContexts,
        _windows: Vec<MetricWindow>,
        items: PackedCheckItems,
    ) -> PackedVerdicts {
        let mut text = String::new();
        let mut results = Vec::new();
        for (index, item) in items.items.iter().enumerate() {
            batching::begin(index as u32);
            let Some(context) = contexts.contexts.get(item.context as usize) else {
                results.push(Err(PluginError::InvalidInput("no such context".into())));
                continue;
            };
            let mut tags = 1 << 2;
            if context.tier == Tier::Enterprise {
                tags |= 1 << 0;
            }
            if context.industry == Industry::Healthcare {
                tags |= 1 << 1;
            }
            match at(&contexts.text, context.account_id) {
                "top" => tags |= 1 << (DECLARED - 1),
                "liar" => tags |= 1 << DECLARED,
                "failing" => {
                    results.push(Err(PluginError::InsufficientData("not yet".into())));
                    continue;
                }
                _ => {}
            }
            results.push(Ok(PackedVerdict {
                applies: true,
                reason: push(&mut text, "tagged by tier and industry"),
                policy_tags: tags,
            }));
        }
        batching::end();
        PackedVerdicts { text, results }
    }
}

impl planning::Guest for TaggedPlaybook {
    fn plan(
        _contexts: PackedContexts,
        _windows: Vec<MetricWindow>,
        items: Vec<PlanItem>,
    ) -> Vec<Result<Vec<Intent>, PluginError>> {
        let mut results = Vec::new();
        for (index, item) in items.iter().enumerate() {
            batching::begin(index as u32);
            results.push(Ok(vec![Intent {
                idempotency_key: item.signal.dedup_key.clone(),
                timing: Timing::Immediate,
                kind: IntentKind::Notify(Notify {
                    channel: Channel::Email,
                    recipient: "csm".into(),
                    template: "tags".into(),
                    summary: item.verdict.policy_tags.join(","),
                }),
            }]));
        }
        batching::end();
        results
    }
}

bindings::export!(TaggedPlaybook with_types_in bindings);
