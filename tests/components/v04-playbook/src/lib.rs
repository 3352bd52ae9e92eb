//! A contract 0.4 playbook written without the SDK: `v05-playbook`'s rules
//! with its policy tags returned as 0.4 returns them, strings packed into
//! the verdicts' text, one list of tag spans verdict after verdict. Since
//! the SDK builds against 0.5, this is what keeps 0.4's packed verdicts
//! under test.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.4.0", world: "playbook" });
}

use bindings::exports::vigil::plugin::planning::PlanItem;
use bindings::exports::vigil::plugin::{conditioning, meta, planning, triggering};
use bindings::vigil::plugin::batching;
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    Channel, Industry, Intent, IntentKind, Notify, PackedCheckItems, PackedContexts,
    PackedSignal, PackedSignals, PackedVerdict, PackedVerdicts, PluginError, PluginInfo,
    PluginKind, Severity, Span, Tier, Timing,
};

/// The policy tags the verdicts may carry (0.4 declares none).
const TAGS: [&str; 3] = ["monitoring-24x7", "hipaa", "tagged-by-bit"];

struct TaggedPlaybook;

impl meta::Guest for TaggedPlaybook {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v04-playbook".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Playbook,
            description: "Tags every event's signal, on contract 0.4.".into(),
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
        let mut spans = Vec::new();
        for (index, item) in items.items.iter().enumerate() {
            batching::begin(index as u32);
            let Some(context) = contexts.contexts.get(item.context as usize) else {
                results.push(Err(PluginError::InvalidInput("no such context".into())));
                continue;
            };
            let first = spans.len() as u32;
            if context.tier == Tier::Enterprise {
                spans.push(push(&mut text, TAGS[0]));
            }
            if context.industry == Industry::Healthcare {
                spans.push(push(&mut text, TAGS[1]));
            }
            spans.push(push(&mut text, TAGS[2]));
            results.push(Ok(PackedVerdict {
                applies: true,
                reason: push(&mut text, "tagged by tier and industry"),
                policy_tags: Span {
                    start: first,
                    len: spans.len() as u32 - first,
                },
            }));
        }
        batching::end();
        PackedVerdicts {
            text,
            results,
            tags: spans,
        }
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
