//! The host's own types for what plugins return: score cards, signals and
//! verdicts, and the check and plan items that carry signals back to
//! plugins.
//!
//! They mirror the contract's records field for field (and serialize the
//! same way), but hold their strings as [`Text`]: a string of up to 24
//! bytes is kept inline, without an allocation. Nearly every string a
//! plugin returns is that short and the same event after event (a score's
//! name and band, a factor's name, a policy tag, a signal's name), and
//! copying each into a `String` of its own was over half of the host's
//! allocations per event (BENCHMARKS.md, "Where the host allocates").
//!
//! Results of contracts 0.1 to 0.3, which wasmtime lifts into the
//! bindings' types, are converted with `From`; contract 0.4's packed
//! results are unpacked straight into these. Plugins of contracts before
//! 0.4, and every `plan` call, take the bindings' types, converted from
//! these.

use serde::{Deserialize, Serialize};

use super::bindings::types::{self as contract, Rag, Severity};
use super::bindings::{CheckItem as ContractCheckItem, PlanItem as ContractPlanItem};

/// A string a plugin returned: inline up to 24 bytes, on the heap beyond.
/// It dereferences to `str` and serializes as a string.
pub type Text = compact_str::CompactString;

/// One weighted factor of a score card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// The factor's name, for example `usage` or `payment-health`.
    pub name: Text,
    /// The factor's weight, 0 to 1; a card's weights add up to 1.
    pub weight: f64,
    /// The factor's raw input, in its own unit (a ratio, a count, ...).
    pub raw: f64,
    /// The factor's normalised reading, 0 to 100.
    pub value: f64,
    /// Points this factor contributes to the score: `weight * value`.
    pub contribution: f64,
    /// A short human explanation of the reading.
    pub note: Text,
}

/// A score with the factors that explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCard {
    /// The score's name, for example `health` or `lead`.
    pub name: Text,
    /// The value, 0 to 100: the sum of the factor contributions.
    pub value: f64,
    /// The band label, for example `critical` or `optimal`.
    pub band: Text,
    /// The traffic-light reading of the value.
    pub rag: Rag,
    /// The weighted factors that explain the value.
    pub factors: Vec<Factor>,
}

/// A score a scorer declares (contract 0.6 and later), once, in
/// `describe`: its name, the bands its cards may carry and the names of
/// the factors they may list. A packed card names each by its position
/// here, and the host fills the names in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredScore {
    /// The score's name, for example `health`.
    pub name: Text,
    /// The band labels, for example `critical`, `declining`, `stable`,
    /// `optimal`.
    pub bands: Vec<Text>,
    /// The factors' names, for example `usage`, `login-trend`.
    pub factors: Vec<Text>,
}

/// Something a trigger or playbook noticed about an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The signal's name, dotted, for example `health.critical`.
    pub name: Text,
    /// How urgent it is.
    pub severity: Severity,
    /// A human explanation: which rule fired, on which values.
    pub reason: Text,
    /// The host suppresses a signal whose dedup key it has seen within the
    /// cooldown.
    pub dedup_key: Text,
    /// Seconds during which the same dedup key is suppressed.
    pub cooldown_secs: u32,
}

/// A condition's decision about a signal in the account's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the signal should be acted upon at all.
    pub applies: bool,
    /// A human explanation of the decision.
    pub reason: Text,
    /// Policy tags the actions take into account, for example `hipaa`.
    pub policy_tags: Vec<Text>,
}

/// What a ruleset returns for one context (contract 0.7): the score cards
/// it computed, the signals it raised and its verdict on each, one for one
/// (`verdicts[i]` is on `signals[i]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruling {
    /// Its score cards, each of its declared scores at most once.
    pub cards: Vec<ScoreCard>,
    /// Its signals.
    pub signals: Vec<Signal>,
    /// Its verdict on each signal.
    pub verdicts: Vec<Verdict>,
}

/// The kinds of plugin: the contract's `plugin-kind` of every version
/// (0.7 adds `ruleset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PluginKind {
    /// Computes scores.
    Scorer,
    /// Turns events and scores into signals.
    Trigger,
    /// Decides whether a signal applies in context.
    Condition,
    /// Plans intents for a signal.
    Action,
    /// A trigger, condition and action bundle.
    Playbook,
    /// Scores, raises signals and decides whether each applies, in one
    /// call (contract 0.7).
    Ruleset,
}

/// What a plugin says about itself: the contract's `plugin-info` but for
/// what later versions declare beside it (windows, policy tags, scores),
/// which the host keeps apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's name: lowercase letters, digits and dashes.
    pub name: String,
    /// The plugin's version (semver).
    pub version: String,
    /// The plugin's kind; it must match the world the plugin targets.
    pub kind: PluginKind,
    /// One sentence about what the plugin does.
    pub description: String,
    /// Event kinds the plugin wants; a trailing `*` matches a prefix, an
    /// empty list means every event.
    pub subscribes: Vec<String>,
    /// A JSON Schema for the plugin's configuration (`{}` when none).
    pub config_schema: String,
    /// The fuel budget the plugin asks for per call.
    pub default_fuel: u64,
}

/// A signal to check, and which context of the batch it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckItem {
    /// The index of the signal's context in the batch.
    pub context: u32,
    /// The signal.
    pub signal: Signal,
}

/// A signal and its combined verdict to plan for, and which context of the
/// batch they are about.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    /// The index of the signal's context in the batch.
    pub context: u32,
    /// The signal.
    pub signal: Signal,
    /// The combined verdict of the conditions.
    pub verdict: Verdict,
}

impl From<contract::Factor> for Factor {
    fn from(factor: contract::Factor) -> Self {
        Self {
            name: factor.name.into(),
            weight: factor.weight,
            raw: factor.raw,
            value: factor.value,
            contribution: factor.contribution,
            note: factor.note.into(),
        }
    }
}

impl From<contract::ScoreCard> for ScoreCard {
    fn from(card: contract::ScoreCard) -> Self {
        Self {
            name: card.name.into(),
            value: card.value,
            band: card.band.into(),
            rag: card.rag,
            factors: card.factors.into_iter().map(Factor::from).collect(),
        }
    }
}

impl From<contract::Signal> for Signal {
    fn from(signal: contract::Signal) -> Self {
        Self {
            name: signal.name.into(),
            severity: signal.severity,
            reason: signal.reason.into(),
            dedup_key: signal.dedup_key.into(),
            cooldown_secs: signal.cooldown_secs,
        }
    }
}

impl From<contract::Verdict> for Verdict {
    fn from(verdict: contract::Verdict) -> Self {
        Self {
            applies: verdict.applies,
            reason: verdict.reason.into(),
            policy_tags: verdict.policy_tags.into_iter().map(Text::from).collect(),
        }
    }
}

// `Text`s are copied as `str`s: `to_string` would go through `Display`
// and the formatter for each.
impl From<&Signal> for contract::Signal {
    fn from(signal: &Signal) -> Self {
        Self {
            name: signal.name.as_str().to_owned(),
            severity: signal.severity,
            reason: signal.reason.as_str().to_owned(),
            dedup_key: signal.dedup_key.as_str().to_owned(),
            cooldown_secs: signal.cooldown_secs,
        }
    }
}

impl From<&Verdict> for contract::Verdict {
    fn from(verdict: &Verdict) -> Self {
        Self {
            applies: verdict.applies,
            reason: verdict.reason.as_str().to_owned(),
            policy_tags: verdict
                .policy_tags
                .iter()
                .map(|tag| tag.as_str().to_owned())
                .collect(),
        }
    }
}

impl From<&CheckItem> for ContractCheckItem {
    fn from(item: &CheckItem) -> Self {
        Self {
            context: item.context,
            signal: (&item.signal).into(),
        }
    }
}

impl From<&PlanItem> for ContractPlanItem {
    fn from(item: &PlanItem) -> Self {
        Self {
            context: item.context,
            signal: (&item.signal).into(),
            verdict: (&item.verdict).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract_card() -> contract::ScoreCard {
        contract::ScoreCard {
            name: "health".into(),
            value: 72.5,
            band: "stable".into(),
            rag: Rag::Yellow,
            factors: vec![contract::Factor {
                name: "usage".into(),
                weight: 1.0,
                raw: 0.725,
                value: 72.5,
                contribution: 72.5,
                note: "logins on 22 of the last 30 days, 73 % of the seats active".into(),
            }],
        }
    }

    #[test]
    fn a_card_serializes_as_the_contracts_card_does() {
        let contract = contract_card();
        let card = ScoreCard::from(contract.clone());
        let ours = serde_json::to_value(&card).unwrap();
        assert_eq!(ours, serde_json::to_value(&contract).unwrap());
        let back: contract::ScoreCard = serde_json::from_value(ours).unwrap();
        assert_eq!(back, contract);
    }

    #[test]
    fn a_card_stored_by_the_contracts_type_reads_back_into_ours() {
        let stored = serde_json::to_string(&contract_card()).unwrap();
        let card: ScoreCard = serde_json::from_str(&stored).unwrap();
        assert_eq!(card, ScoreCard::from(contract_card()));
        assert_eq!(card.factors[0].note, contract_card().factors[0].note);
    }

    #[test]
    fn signals_and_verdicts_convert_both_ways_unchanged() {
        let signal = contract::Signal {
            name: "health.critical".into(),
            severity: Severity::High,
            reason: "health 31 is below 40 for the second day running".into(),
            dedup_key: "acct-7:health.critical".into(),
            cooldown_secs: 86_400,
        };
        let verdict = contract::Verdict {
            applies: true,
            reason: "enterprise".into(),
            policy_tags: vec!["executive-notification".into(), "hipaa".into()],
        };
        let ours = Signal::from(signal.clone());
        assert_eq!(contract::Signal::from(&ours), signal);
        let item = PlanItem {
            context: 3,
            signal: ours,
            verdict: Verdict::from(verdict.clone()),
        };
        let lowered = ContractPlanItem::from(&item);
        assert_eq!(lowered.context, 3);
        assert_eq!(lowered.signal, signal);
        assert_eq!(lowered.verdict, verdict);
    }
}
