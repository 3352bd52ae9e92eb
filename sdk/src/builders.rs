//! Builders for score cards, signals and intents, and the standard bands.

use std::borrow::Cow;

use crate::__private::{append_short, copy_short};
use crate::{
    Channel, Context, Escalate, EscalationLevel, Factor, Freeze, Intent, IntentKind, Notify, Rag,
    Schedule, ScoreCard, Severity, Signal, Task, Timestamp, Timing, Webhook,
};

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The stable name of a channel: `email`, `chat`, `sms`, `in-app`.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Chat => "chat",
        Channel::Sms => "sms",
        Channel::InApp => "in-app",
    }
}

/// The stable name of an escalation level: `l1`, `l2`, `l3`.
pub fn level_name(level: EscalationLevel) -> &'static str {
    match level {
        EscalationLevel::L1 => "l1",
        EscalationLevel::L2 => "l2",
        EscalationLevel::L3 => "l3",
    }
}

/// `part / whole` as a ratio, 0 when `whole` is 0.
pub fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// `x` with at most two decimals and no trailing zeros, for reasons and
/// notes: `24.5`, `80`, `0.33`.
pub fn short_number(x: f64) -> String {
    let text = format!("{x:.2}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The health bands: Critical < 30, Declining 30–50, Stable 50–70,
/// Optimal > 70; read as Red below 50, Yellow from 50 to 70, Green above 70.
pub fn health_band(value: f64) -> (&'static str, Rag) {
    let [critical, declining, stable, optimal] = HEALTH_BANDS;
    if value < 30.0 {
        (critical, Rag::Red)
    } else if value < 50.0 {
        (declining, Rag::Red)
    } else if value <= 70.0 {
        (stable, Rag::Yellow)
    } else {
        (optimal, Rag::Green)
    }
}

/// The health bands, in the order a scorer declares them when it gives no
/// `bands`: the labels [`health_band`] returns.
pub const HEALTH_BANDS: [&str; 4] = ["critical", "declining", "stable", "optimal"];

/// The lead bands: hot from 70, warm from 40, cold below 40.
pub fn lead_band(value: f64) -> (&'static str, Rag) {
    let [hot, warm, cold] = LEAD_BANDS;
    if value >= 70.0 {
        (hot, Rag::Green)
    } else if value >= 40.0 {
        (warm, Rag::Yellow)
    } else {
        (cold, Rag::Red)
    }
}

/// The lead bands, for a lead scorer's `bands`: the labels [`lead_band`]
/// returns.
pub const LEAD_BANDS: [&str; 3] = ["hot", "warm", "cold"];

/// Builds a [`ScoreCard`] from weighted factors: each contribution is its
/// factor's weight times its value, and the card's value is their sum,
/// clamped to 0–100. The contributions add up to the value, as the host
/// requires, when every weight is within 0–1 and the weights add up to at
/// most 1 (the host refuses a card whose weights or sum are out of bounds).
#[derive(Debug, Clone)]
pub struct ScoreCardBuilder {
    name: Cow<'static, str>,
    factors: Vec<Factor>,
}

impl ScoreCardBuilder {
    /// Starts a card for the score called `name`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            // Room for a typical card's factors without growing.
            factors: Vec::with_capacity(8),
        }
    }

    /// Adds a factor: its `weight` (0–1), its `raw` input, its normalised
    /// `value` (clamped to 0–100) and a note. Its contribution is
    /// `weight * value`.
    pub fn factor(
        mut self,
        name: impl Into<Cow<'static, str>>,
        weight: f64,
        raw: f64,
        value: f64,
        note: impl Into<Cow<'static, str>>,
    ) -> Self {
        let value = clamp_score(value);
        self.factors.push(Factor {
            name: name.into(),
            weight,
            raw,
            value,
            contribution: weight * value,
            note: note.into(),
        });
        self
    }

    /// Finishes the card: the value is the sum of the contributions (clamped
    /// to 0–100) and `band` names its band.
    pub fn build(self, band: impl Fn(f64) -> (&'static str, Rag)) -> ScoreCard {
        let value = clamp_score(self.factors.iter().map(|f| f.contribution).sum());
        let (band, rag) = band(value);
        ScoreCard {
            name: self.name,
            value,
            band: Cow::Borrowed(band),
            rag,
            factors: self.factors,
        }
    }
}

fn clamp_score(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 100.0)
    }
}

/// Builds a [`Signal`]; the dedup key defaults to `<account>:<name>` and the
/// cooldown to 24 hours.
#[derive(Debug, Clone)]
pub struct SignalBuilder {
    signal: Signal,
}

impl SignalBuilder {
    /// Starts a signal called `name` for the account in `ctx`.
    pub fn new(
        ctx: &Context<'_>,
        name: &str,
        severity: Severity,
        reason: impl Into<String>,
    ) -> Self {
        // The name and the key's parts are copied as the SDK copies what
        // a plugin returns: short ones without a Wasm `memory.copy`.
        let mut dedup_key = String::with_capacity(ctx.account.id.len() + 1 + name.len());
        append_short(&mut dedup_key, &ctx.account.id);
        dedup_key.push(':');
        append_short(&mut dedup_key, name);
        Self {
            signal: Signal {
                name: copy_short(name),
                severity,
                reason: reason.into(),
                dedup_key,
                cooldown_secs: 24 * 3600,
            },
        }
    }

    /// Sets the dedup key.
    pub fn dedup_key(mut self, key: impl Into<String>) -> Self {
        self.signal.dedup_key = key.into();
        self
    }

    /// Sets the cooldown in hours.
    pub fn cooldown_hours(mut self, hours: u32) -> Self {
        self.signal.cooldown_secs = hours.saturating_mul(3600);
        self
    }

    /// Finishes the signal.
    pub fn build(self) -> Signal {
        self.signal
    }
}

impl Timing {
    /// The latest moment an intent in this bucket is due, from `now`:
    /// immediate 1 hour, short-term 24 hours, medium-term 7 days,
    /// long-term 4 weeks.
    pub fn due_from(self, now: Timestamp) -> Timestamp {
        let window = match self {
            Timing::Immediate => HOUR_MS,
            Timing::ShortTerm => DAY_MS,
            Timing::MediumTerm => 7 * DAY_MS,
            Timing::LongTerm => 28 * DAY_MS,
        };
        now.saturating_add(window)
    }
}

/// Builds the [`Intent`]s for one signal: every intent gets the timing
/// bucket given here and an idempotency key derived from the account, the
/// signal's dedup key, the evaluation day and what the intent does, so that
/// replaying the same decision cannot act twice.
#[derive(Debug, Clone)]
pub struct IntentBuilder<'a> {
    ctx: &'a Context<'a>,
    signal: &'a Signal,
    intents: Vec<Intent>,
}

impl<'a> IntentBuilder<'a> {
    /// Starts planning for `signal` in `ctx`.
    pub fn new(ctx: &'a Context<'a>, signal: &'a Signal) -> Self {
        Self {
            ctx,
            signal,
            intents: Vec::new(),
        }
    }

    fn push(&mut self, what: &str, timing: Timing, kind: IntentKind) {
        let day = self.ctx.now.div_euclid(DAY_MS);
        let account = &self.ctx.account.id;
        let dedup = &self.signal.dedup_key;
        // Keys are built from stable names only (never `Debug` output), so
        // they stay the same across SDK and toolchain upgrades.
        let idempotency_key = if dedup.starts_with(&format!("{account}:")) {
            format!("{dedup}:{day}:{what}")
        } else {
            format!("{account}:{dedup}:{day}:{what}")
        };
        self.intents.push(Intent {
            idempotency_key,
            timing,
            kind,
        });
    }

    /// Notifies `recipient` (a role: `csm`, `executive-sponsor`, ...).
    pub fn notify(
        mut self,
        timing: Timing,
        channel: Channel,
        recipient: &str,
        template: &str,
    ) -> Self {
        let summary = format!("{}: {}", self.ctx.account.name, self.signal.reason);
        self.push(
            &format!("notify:{}:{recipient}:{template}", channel_name(channel)),
            timing,
            IntentKind::Notify(Notify {
                channel,
                recipient: recipient.to_string(),
                template: template.to_string(),
                summary,
            }),
        );
        self
    }

    /// Creates a task for `assignee`, due at the end of the timing bucket.
    pub fn task(mut self, timing: Timing, title: &str, assignee: &str) -> Self {
        let due_at = timing.due_from(self.ctx.now);
        self.push(
            &format!("task:{title}"),
            timing,
            IntentKind::Task(Task {
                title: title.to_string(),
                assignee: assignee.to_string(),
                due_at,
            }),
        );
        self
    }

    /// Escalates to `level`, to be picked up by the end of the timing bucket.
    pub fn escalate(mut self, timing: Timing, level: EscalationLevel) -> Self {
        let due_at = timing.due_from(self.ctx.now);
        let reason = self.signal.reason.clone();
        self.push(
            &format!("escalate:{}", level_name(level)),
            timing,
            IntentKind::Escalate(Escalate {
                level,
                reason,
                due_at,
            }),
        );
        self
    }

    /// Schedules `what` at the end of the timing bucket.
    pub fn schedule(mut self, timing: Timing, what: &str) -> Self {
        let at = timing.due_from(self.ctx.now);
        self.push(
            &format!("schedule:{what}"),
            timing,
            IntentKind::Schedule(Schedule {
                what: what.to_string(),
                at,
            }),
        );
        self
    }

    /// Calls the webhook connector named `connector` with a JSON `body`.
    pub fn webhook(mut self, timing: Timing, connector: &str, body: String) -> Self {
        self.push(
            &format!("webhook:{connector}"),
            timing,
            IntentKind::Webhook(Webhook {
                connector: connector.to_string(),
                body,
            }),
        );
        self
    }

    /// Freezes the account until the issue is resolved.
    pub fn freeze(mut self, timing: Timing) -> Self {
        let reason = self.signal.reason.clone();
        self.push("freeze", timing, IntentKind::Freeze(Freeze { reason }));
        self
    }

    /// Applies `plan` only when `condition` holds, for rules such as
    /// "notify the executive sponsor only for Enterprise accounts".
    pub fn when(self, condition: bool, plan: impl FnOnce(Self) -> Self) -> Self {
        if condition { plan(self) } else { self }
    }

    /// Finishes planning.
    pub fn build(self) -> Vec<Intent> {
        self.intents
    }
}

#[cfg(test)]
mod tests {
    use super::SignalBuilder;
    use crate::Severity;
    use crate::testing::{AccountBuilder, ContextBuilder};

    #[test]
    fn a_signals_name_and_dedup_key_are_copied_whole_whatever_their_lengths() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for id_len in 1..=20 {
            let ctx = ContextBuilder::new(AccountBuilder::new(&text[..id_len]).build()).build();
            for name in (1..=20)
                .map(|len| &text[..len])
                .chain(["usage.€", "日本語"])
            {
                let signal = SignalBuilder::new(&ctx, name, Severity::Low, "reason").build();
                assert_eq!(signal.name, name);
                assert_eq!(signal.dedup_key, format!("{}:{name}", &text[..id_len]));
            }
        }
    }
}
