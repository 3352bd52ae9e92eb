//! A contract 0.7 ruleset written without the SDK: one `rule` call scores
//! each account, raises signals on it and gives its verdict on each, packed
//! by hand, so the tests can check 0.7's layout and the pipeline's handling
//! of a ruleset apart from the SDK.
//!
//! It declares one score, `seat-score` (bands `low` and `high`, factor
//! `seats`), two policy tags (`csm-outreach`, `executive-notification`)
//! and one window, the logins of the last 30 days. For each account:
//! - the card: active users over licensed seats, 0 to 100, banded `high`
//!   (green) from 50;
//! - under 50, the signal `seats.low` (high, dedup key `seats.low`, the
//!   configured `cooldown` in seconds, 0 by default), which it says does
//!   not apply to a small business ("self-service first") and applies to
//!   the others, tagged `csm-outreach`, and `executive-notification` too
//!   for an enterprise;
//! - with no login in the window, the signal `logins.none` (medium),
//!   which applies, untagged.
//!
//! An event of the kind `ruleset.fail` gets a plugin error. An account
//! whose id starts with `twice` raises `seats.low` twice (the same dedup
//! key), `failing` gets a plugin error, `unjudged` a signal
//! without a verdict (its verdicts' span runs past them), `double` two
//! cards of the same score, and `untagged` a verdict naming tag 5 (not
//! declared): the host must refuse those rulings, each for its item alone.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.7.0", world: "ruleset" });
}

use bindings::exports::vigil::plugin::{meta, ruling};
use bindings::vigil::plugin::history::MetricWindow;
use bindings::vigil::plugin::types::{
    PackedContexts, PackedFactor, PackedRuling, PackedRulings, PackedScoreCard, PackedSignal,
    PackedVerdict, PluginError, PluginInfo, PluginKind, Rag, ScoreInfo, Severity, Span, Tier,
    WindowSpec,
};
use bindings::vigil::plugin::{batching, host};

/// The declared tags: bit `i` of a packed verdict is `TAGS[i]`.
const TAGS: [&str; 2] = ["csm-outreach", "executive-notification"];

struct SeatRules;

impl meta::Guest for SeatRules {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v07-ruleset".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Ruleset,
            description: "Seat use scored, raised and checked in one call, on contract 0.7."
                .into(),
            subscribes: Vec::new(),
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
            windows: vec![WindowSpec {
                metric: "logins".into(),
                days: 30,
                offset_days: 0,
            }],
            policy_tags: TAGS.iter().map(|tag| tag.to_string()).collect(),
            scores: vec![ScoreInfo {
                name: "seat-score".into(),
                bands: vec!["low".into(), "high".into()],
                factors: vec!["seats".into()],
            }],
        }
    }
}

/// The results being packed.
#[derive(Default)]
struct Packer {
    text: String,
    cards: Vec<PackedScoreCard>,
    factors: Vec<PackedFactor>,
    signals: Vec<PackedSignal>,
    verdicts: Vec<PackedVerdict>,
}

impl Packer {
    fn text(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            len: text.len() as u32,
        }
    }

    fn signal(&mut self, name: &str, severity: Severity, reason: &str, cooldown_secs: u32) {
        let signal = PackedSignal {
            name: self.text(name),
            severity,
            reason: self.text(reason),
            dedup_key: self.text(name),
            cooldown_secs,
        };
        self.signals.push(signal);
    }

    fn verdict(&mut self, applies: bool, reason: &str, policy_tags: u64) {
        let verdict = PackedVerdict {
            applies,
            reason: self.text(reason),
            policy_tags,
        };
        self.verdicts.push(verdict);
    }
}

/// The string at `span` of the contexts' text.
fn text(contexts: &PackedContexts, span: Span) -> &str {
    &contexts.text[span.start as usize..(span.start + span.len) as usize]
}

impl ruling::Guest for SeatRules {
    fn rule(contexts: PackedContexts, windows: Vec<MetricWindow>) -> PackedRulings {
        let cooldown = host::config("cooldown")
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(0);
        let mut packer = Packer::default();
        let mut results = Vec::new();
        for (index, context) in contexts.contexts.iter().enumerate() {
            batching::begin(index as u32);
            let account = text(&contexts, context.account_id);
            if account.starts_with("failing") || text(&contexts, context.event_kind) == "ruleset.fail" {
                results.push(Err(PluginError::InsufficientData("no seats yet".into())));
                continue;
            }
            let seats = f64::from(context.licensed_seats);
            let value = if seats > 0.0 {
                (f64::from(context.active_users) / seats * 100.0).clamp(0.0, 100.0)
            } else {
                0.0
            };
            let high = value >= 50.0;
            let first_card = packer.cards.len() as u32;
            let copies = if account.starts_with("double") { 2 } else { 1 };
            for _ in 0..copies {
                let note = packer.text("active users over seats");
                let first_factor = packer.factors.len() as u32;
                packer.factors.push(PackedFactor {
                    factor: 0,
                    weight: 1.0,
                    raw: value / 100.0,
                    value,
                    contribution: value,
                    note,
                });
                packer.cards.push(PackedScoreCard {
                    score: 0,
                    value,
                    band: u32::from(high),
                    rag: if high { Rag::Green } else { Rag::Red },
                    factors: Span {
                        start: first_factor,
                        len: 1,
                    },
                });
            }
            let first_signal = packer.signals.len() as u32;
            if !high {
                let raised = if account.starts_with("twice") { 2 } else { 1 };
                for _ in 0..raised {
                    packer.signal(
                        "seats.low",
                        Severity::High,
                        "fewer than half the seats in use",
                        cooldown,
                    );
                    match context.tier {
                        Tier::SmallBusiness => {
                            packer.verdict(false, "self-service first", 0)
                        }
                        Tier::Enterprise => packer.verdict(true, "enterprise account", 0b11),
                        Tier::MidMarket => packer.verdict(true, "mid-market account", 0b01),
                    }
                }
            }
            let logins = windows.get(index).map_or(0.0, |window| window.sum);
            if logins == 0.0 {
                packer.signal("logins.none", Severity::Medium, "no login in 30 days", 0);
                let tags = if account.starts_with("untagged") { 1 << 5 } else { 0 };
                packer.verdict(true, "always", tags);
            }
            if account.starts_with("unjudged") {
                packer.signal("unjudged", Severity::Info, "no verdict follows", 0);
            }
            results.push(Ok(PackedRuling {
                cards: Span {
                    start: first_card,
                    len: copies,
                },
                signals: Span {
                    start: first_signal,
                    len: packer.signals.len() as u32 - first_signal,
                },
            }));
        }
        batching::end();
        let Packer {
            text,
            cards,
            factors,
            signals,
            verdicts,
        } = packer;
        PackedRulings {
            text,
            results,
            cards,
            factors,
            signals,
            verdicts,
        }
    }
}

bindings::export!(SeatRules with_types_in bindings);
