//! Checks on what plugins return. Plugins decide, the host acts: nothing a
//! plugin returns is used before it passes these checks.

use super::bindings::types::{Intent, IntentKind, PluginInfo};
use super::results::{Factor, Ruling, ScoreCard, Signal, Verdict};

/// The longest name (score, factor, band, signal, tag, key) a plugin may use.
const MAX_NAME: usize = 128;

/// Bytes a list element counts for on top of its own size, so that a
/// flood of tiny elements still meets the output cap.
const ELEMENT_OVERHEAD: usize = 64;

/// A plugin result the host can measure and check.
pub trait PluginOutput {
    /// How many of these one call may return in a list: a trigger's signals
    /// and an action's intents each fan out into further calls and effects.
    const MAX_IN_LIST: usize = 64;

    /// Bytes of its strings plus a fixed cost per field, compared with the
    /// output cap.
    fn size(&self) -> usize;
    /// Whether it is well formed; the error says what is wrong.
    fn validate(&self) -> Result<(), String>;
}

pub(super) fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > MAX_NAME {
        return Err(format!(
            "{what} `{}…` is longer than {MAX_NAME} bytes",
            &value[..value.floor_char_boundary(32)]
        ));
    }
    // Names are nearly always printable ASCII, checked eight bytes at a
    // time (some twenty names an event); anything else is checked
    // character by character.
    if !printable_ascii(value.as_bytes()) && value.chars().any(char::is_control) {
        return Err(format!("{what} `{value}` contains control characters"));
    }
    Ok(())
}

/// Whether every byte is printable ASCII (`0x20..=0x7e`), tested a 64-bit
/// word `w` at a time: `(w - 0x2020…20) & !w` has a top bit set when some
/// byte is below `0x20`, and `(w + 0x0101…01) | w` when some byte is above
/// `0x7e`. A borrow or carry between bytes only starts at a byte that is
/// itself out of range, so neither misfires on a word whose bytes are all
/// in range. The bytes past the last whole word are tested as the string's
/// last eight bytes, overlapping the word before, so that no partial word
/// is copied (a copy of a variable length is a `memcpy` call, some twenty
/// names an event); a string shorter than a word is tested byte by byte.
fn printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const TOPS: u64 = u64::from_le_bytes([0x80; 8]);
    let out_of_range = |word: &[u8; 8]| {
        let word = u64::from_le_bytes(*word);
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let above_tilde = word.wrapping_add(ONES) | word;
        (below_space | above_tilde) & TOPS
    };
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().all(|byte| (0x20..=0x7e).contains(byte));
    };
    let (words, _) = bytes.as_chunks::<8>();
    let flagged = words.iter().fold(out_of_range(last), |flagged, word| {
        flagged | out_of_range(word)
    });
    flagged == 0
}

fn check_finite(what: &str, value: f64) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} is {value}, not a finite number"))
    }
}

impl PluginOutput for Factor {
    fn size(&self) -> usize {
        self.name.len() + self.note.len() + 32
    }

    fn validate(&self) -> Result<(), String> {
        check_name("factor name", &self.name)?;
        check_factor_numbers(self)
    }
}

/// Checks that a factor's numbers are finite.
fn check_factor_numbers(factor: &Factor) -> Result<(), String> {
    for (what, value) in [
        ("weight", factor.weight),
        ("raw", factor.raw),
        ("value", factor.value),
        ("contribution", factor.contribution),
    ] {
        // The message is formatted only for a value that fails: this runs
        // for every factor of every score card.
        if !value.is_finite() {
            return check_finite(&format!("factor `{}` {what}", factor.name), value);
        }
    }
    Ok(())
}

impl PluginOutput for ScoreCard {
    fn size(&self) -> usize {
        self.name.len()
            + self.band.len()
            + 16
            + self.factors.iter().map(PluginOutput::size).sum::<usize>()
    }

    fn validate(&self) -> Result<(), String> {
        check_name("score name", &self.name)?;
        check_name("band", &self.band)?;
        self.factors
            .iter()
            .try_for_each(|factor| check_name("factor name", &factor.name))?;
        check_card_numbers(self)
    }
}

/// Checks a card's numbers: its value within 0–100, every factor's numbers
/// finite and its weight within 0–1, the contributions adding up to the
/// value.
fn check_card_numbers(card: &ScoreCard) -> Result<(), String> {
    check_finite("score value", card.value)?;
    if !(0.0..=100.0).contains(&card.value) {
        return Err(format!("score value {} is outside 0–100", card.value));
    }
    card.factors.iter().try_for_each(check_factor_numbers)?;
    if let Some(factor) = card
        .factors
        .iter()
        .find(|f| !(0.0..=1.0).contains(&f.weight))
    {
        return Err(format!(
            "factor `{}` has weight {}, outside 0–1",
            factor.name, factor.weight
        ));
    }
    // The contract: a card's contributions add up to its value.
    let sum: f64 = card.factors.iter().map(|f| f.contribution).sum();
    if !card.factors.is_empty() && (sum - card.value).abs() > 0.01 {
        return Err(format!(
            "factor contributions add up to {sum}, not to the value {}",
            card.value
        ));
    }
    Ok(())
}

/// A score card whose score, band and factors are the plugin's declared
/// ones (contract 0.6): their names were checked once, when the plugin was
/// loaded, so only its size and numbers are checked for every card.
#[derive(Debug)]
pub(super) struct DeclaredCard(pub(super) ScoreCard);

impl PluginOutput for DeclaredCard {
    fn size(&self) -> usize {
        self.0.size()
    }

    fn validate(&self) -> Result<(), String> {
        check_card_numbers(&self.0)
    }
}

impl PluginOutput for Signal {
    fn size(&self) -> usize {
        self.name.len() + self.reason.len() + self.dedup_key.len() + 8
    }

    fn validate(&self) -> Result<(), String> {
        check_name("signal name", &self.name)?;
        check_name("dedup key", &self.dedup_key)
    }
}

impl PluginOutput for Verdict {
    fn size(&self) -> usize {
        self.reason.len() + 1 + self.policy_tags.iter().map(|t| t.len() + 4).sum::<usize>()
    }

    fn validate(&self) -> Result<(), String> {
        self.policy_tags
            .iter()
            .try_for_each(|tag| check_name("policy tag", tag))
    }
}

/// A verdict whose policy tags are the plugin's declared tags (contract
/// 0.5): their names were checked once, when the plugin was loaded, so
/// only its size is checked for every verdict.
#[derive(Debug)]
pub(super) struct DeclaredVerdict(pub(super) Verdict);

impl PluginOutput for DeclaredVerdict {
    fn size(&self) -> usize {
        self.0.size()
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A ruleset's ruling (contract 0.7), whose scores, bands, factors and
/// policy tags are the plugin's declared ones (checked at load): its size,
/// its cards' numbers and its signals are checked for every ruling, as a
/// scorer's cards and a trigger's signals are.
#[derive(Debug)]
pub(super) struct DeclaredRuling(pub(super) Ruling);

impl PluginOutput for DeclaredRuling {
    fn size(&self) -> usize {
        let Ruling {
            cards,
            signals,
            verdicts,
        } = &self.0;
        cards.iter().map(PluginOutput::size).sum::<usize>()
            + signals.size()
            + verdicts.iter().map(PluginOutput::size).sum::<usize>()
    }

    fn validate(&self) -> Result<(), String> {
        let Ruling {
            cards,
            signals,
            verdicts,
        } = &self.0;
        cards.iter().try_for_each(check_card_numbers)?;
        if verdicts.len() != signals.len() {
            return Err(format!(
                "returned {} verdicts for {} signals",
                verdicts.len(),
                signals.len()
            ));
        }
        signals.validate()
    }
}

impl PluginOutput for Intent {
    const MAX_IN_LIST: usize = 32;

    fn size(&self) -> usize {
        let kind = match &self.kind {
            IntentKind::Notify(n) => n.recipient.len() + n.template.len() + n.summary.len(),
            IntentKind::Task(t) => t.title.len() + t.assignee.len() + 8,
            IntentKind::Escalate(e) => e.reason.len() + 9,
            IntentKind::Schedule(s) => s.what.len() + 8,
            IntentKind::Webhook(w) => w.connector.len() + w.body.len(),
            IntentKind::Freeze(f) => f.reason.len(),
        };
        self.idempotency_key.len() + 2 + kind
    }

    fn validate(&self) -> Result<(), String> {
        check_name("idempotency key", &self.idempotency_key)?;
        match &self.kind {
            IntentKind::Notify(n) => {
                check_name("notify recipient", &n.recipient)?;
                check_name("notify template", &n.template)
            }
            IntentKind::Task(t) => {
                check_name("task assignee", &t.assignee)?;
                if t.title.is_empty() {
                    return Err("task title is empty".into());
                }
                Ok(())
            }
            IntentKind::Escalate(_) | IntentKind::Freeze(_) => Ok(()),
            IntentKind::Schedule(s) => check_name("schedule what", &s.what),
            IntentKind::Webhook(w) => {
                check_name("webhook connector", &w.connector)?;
                serde_json::from_str::<serde_json::Value>(&w.body)
                    .map(|_| ())
                    .map_err(|e| format!("webhook body for `{}` is not JSON: {e}", w.connector))
            }
        }
    }
}

impl<T: PluginOutput> PluginOutput for Vec<T> {
    fn size(&self) -> usize {
        self.iter()
            .map(|item| item.size() + ELEMENT_OVERHEAD)
            .sum::<usize>()
            + 4
    }

    fn validate(&self) -> Result<(), String> {
        if self.len() > T::MAX_IN_LIST {
            return Err(format!(
                "returned {} items; at most {} are accepted from one call",
                self.len(),
                T::MAX_IN_LIST
            ));
        }
        self.iter().try_for_each(PluginOutput::validate)
    }
}

impl PluginOutput for PluginInfo {
    fn size(&self) -> usize {
        self.name.len()
            + self.version.len()
            + self.description.len()
            + self.config_schema.len()
            + self.subscribes.iter().map(String::len).sum::<usize>()
            + 16
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(format!(
                "returned the name `{}`; a plugin name is 1–64 lowercase letters, digits and dashes",
                self.name
            ));
        }
        check_name("version", &self.version)?;
        if semver::Version::parse(&self.version).is_err() {
            return Err(format!(
                "returned the version `{}`, which is not semver (x.y.z)",
                self.version
            ));
        }
        serde_json::from_str::<serde_json::Value>(&self.config_schema)
            .map_err(|e| format!("returned a config schema that is not JSON: {e}"))?;
        if self.default_fuel == 0 {
            return Err("returned a default fuel of 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_every_byte_from_space_to_tilde_whatever_its_place() {
        for len in 0..=24 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut bytes = vec![b'a'; len];
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = byte;
                    }
                    assert_eq!(
                        printable_ascii(&bytes),
                        (0x20..=0x7e).contains(&byte),
                        "byte {byte:#04x} at {at} of {len}"
                    );
                }
            }
        }
        for first in 0x20..=0x7e {
            for second in 0x20..=0x7e {
                let bytes: Vec<u8> = [first, second].repeat(9);
                assert!(printable_ascii(&bytes), "{bytes:?}");
            }
        }
        assert!(printable_ascii(b""));
        assert!(printable_ascii(b" ~ health.critical ~ "));
    }

    #[test]
    fn a_name_is_refused_when_empty_too_long_or_with_control_characters() {
        assert!(check_name("tag", "hipaa").is_ok());
        assert!(check_name("tag", "café ☕").is_ok());
        assert!(check_name("tag", &"x".repeat(MAX_NAME)).is_ok());
        let refused = |name: &str| check_name("tag", name).err().unwrap_or_default();
        assert_eq!(refused(""), "tag is empty");
        assert!(refused(&"x".repeat(MAX_NAME + 1)).contains("longer than 128 bytes"));
        for name in [
            "tab\there",
            "line\n",
            "del\u{7f}",
            "nel\u{85}é",
            "café\u{9f}",
        ] {
            assert!(
                refused(name).contains("contains control characters"),
                "{name:?} was accepted"
            );
        }
    }
}
