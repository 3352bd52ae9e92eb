//! Checks on what plugins return. Plugins decide, the host acts: nothing a
//! plugin returns is used before it passes these checks.

use super::bindings::types::{Factor, Intent, IntentKind, PluginInfo, ScoreCard, Signal, Verdict};

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

fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > MAX_NAME {
        return Err(format!(
            "{what} `{}…` is longer than {MAX_NAME} bytes",
            &value[..value.floor_char_boundary(32)]
        ));
    }
    // Names are nearly always printable ASCII, checked a byte at a time;
    // anything else is checked character by character.
    let printable_ascii = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable_ascii && value.chars().any(char::is_control) {
        return Err(format!("{what} `{value}` contains control characters"));
    }
    Ok(())
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
        for (what, value) in [
            ("weight", self.weight),
            ("raw", self.raw),
            ("value", self.value),
            ("contribution", self.contribution),
        ] {
            // The message is formatted only for a value that fails: this
            // runs for every factor of every score card.
            if !value.is_finite() {
                return check_finite(&format!("factor `{}` {what}", self.name), value);
            }
        }
        Ok(())
    }
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
        check_finite("score value", self.value)?;
        if !(0.0..=100.0).contains(&self.value) {
            return Err(format!("score value {} is outside 0–100", self.value));
        }
        self.factors.iter().try_for_each(PluginOutput::validate)?;
        if let Some(factor) = self
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
        let sum: f64 = self.factors.iter().map(|f| f.contribution).sum();
        if !self.factors.is_empty() && (sum - self.value).abs() > 0.01 {
            return Err(format!(
                "factor contributions add up to {sum}, not to the value {}",
                self.value
            ));
        }
        Ok(())
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
