//! Native test helpers: build accounts, events and contexts, install a metric
//! history and configuration, and call plugin functions without Wasm.
//!
//! ```
//! use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};
//!
//! let ctx = ContextBuilder::new(AccountBuilder::new("acme").seats(100, 20).build())
//!     .event("usage.daily", "{}")
//!     .build();
//! History::new(ctx.now).sample("logins", 3, 40.0).install();
//! assert_eq!(vigil_sdk::window("logins", 7, 0).sum, 40.0);
//! ```

// Compiled to Wasm, plugins read the host instead of these fixtures.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{
    Account, Attribute, Context, Event, Industry, LogLevel, MetricWindow, PluginError, Ruleset,
    ScoreCard, ScoreSummary, Signal, Tier, Timestamp, Verdict,
};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The evaluation time the builders use unless told otherwise:
/// 2026-06-01T00:00:00Z.
pub const DEFAULT_NOW: Timestamp = 1_780_272_000_000;

/// `n` days in milliseconds.
pub fn days(n: i64) -> i64 {
    n * DAY_MS
}

/// Builds an [`Account`] with sensible defaults (Mid-Market, technology,
/// 100 seats, 80 active users).
#[derive(Debug, Clone)]
pub struct AccountBuilder {
    account: Account<'static>,
}

impl AccountBuilder {
    /// Starts an account with id and name `id`.
    pub fn new(id: &str) -> Self {
        Self {
            account: Account {
                id: Cow::Owned(id.to_string()),
                name: Cow::Owned(id.to_string()),
                tier: Tier::MidMarket,
                industry: Industry::Technology,
                licensed_seats: 100,
                active_users: 80,
                arr: 120_000,
                contract_start: None,
                renewal_date: None,
                attributes: Vec::new(),
            },
        }
    }

    /// Sets the display name.
    pub fn name(mut self, name: &str) -> Self {
        self.account.name = Cow::Owned(name.to_string());
        self
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.account.tier = tier;
        self
    }

    /// Sets the industry.
    pub fn industry(mut self, industry: Industry) -> Self {
        self.account.industry = industry;
        self
    }

    /// Sets licensed seats and active users.
    pub fn seats(mut self, licensed: u32, active: u32) -> Self {
        self.account.licensed_seats = licensed;
        self.account.active_users = active;
        self
    }

    /// Sets the annual recurring revenue.
    pub fn arr(mut self, arr: u64) -> Self {
        self.account.arr = arr;
        self
    }

    /// Sets the renewal date.
    pub fn renews_at(mut self, at: Timestamp) -> Self {
        self.account.renewal_date = Some(at);
        self
    }

    /// Sets the contract start date.
    pub fn started_at(mut self, at: Timestamp) -> Self {
        self.account.contract_start = Some(at);
        self
    }

    /// Adds a custom attribute.
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.account.attributes.push(Attribute {
            key: Cow::Owned(key.to_string()),
            value: Cow::Owned(value.to_string()),
        });
        self
    }

    /// Finishes the account.
    pub fn build(self) -> Account<'static> {
        self.account
    }
}

/// Builds a [`Context`] around an account: an event (kind `test` by
/// default), the evaluation time ([`DEFAULT_NOW`] by default) and the scores
/// computed so far.
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    ctx: Context<'static>,
}

impl ContextBuilder {
    /// Starts a context for `account`.
    pub fn new(account: Account<'static>) -> Self {
        let event = Event {
            id: Cow::Owned(format!("{}-evt-1", account.id)),
            account_id: account.id.clone(),
            kind: Cow::Borrowed("test"),
            occurred_at: DEFAULT_NOW,
            payload: Cow::Borrowed("{}"),
        };
        Self {
            ctx: Context {
                account,
                event,
                now: DEFAULT_NOW,
                scores: Vec::new(),
            },
        }
    }

    /// Sets the triggering event's kind and JSON payload.
    pub fn event(mut self, kind: &str, payload: &str) -> Self {
        self.ctx.event.kind = Cow::Owned(kind.to_string());
        self.ctx.event.payload = Cow::Owned(payload.to_string());
        self
    }

    /// Sets the evaluation time (and the event's time).
    pub fn now(mut self, now: Timestamp) -> Self {
        self.ctx.now = now;
        self.ctx.event.occurred_at = now;
        self
    }

    /// Adds a score computed earlier in the evaluation.
    pub fn score(mut self, card: &ScoreCard) -> Self {
        self.ctx.scores.push(ScoreSummary {
            name: card.name.clone(),
            value: card.value,
            band: card.band.clone(),
            rag: card.rag,
        });
        self
    }

    /// Adds a score by name and value, with the health bands.
    pub fn score_value(mut self, name: &str, value: f64) -> Self {
        let (band, rag) = crate::health_band(value);
        self.ctx.scores.push(ScoreSummary {
            name: Cow::Owned(name.to_string()),
            value,
            band: Cow::Borrowed(band),
            rag,
        });
        self
    }

    /// Finishes the context.
    pub fn build(self) -> Context<'static> {
        self.ctx
    }
}

#[derive(Debug, Default, Clone)]
struct Fixture {
    now: Timestamp,
    samples: BTreeMap<String, Vec<(Timestamp, f64)>>,
    config: BTreeMap<String, String>,
    logs: Vec<(LogLevel, String)>,
}

thread_local! {
    static FIXTURE: RefCell<Fixture> = RefCell::new(Fixture { now: DEFAULT_NOW, ..Fixture::default() });
}

/// The metric history a natively tested plugin sees through
/// [`crate::window`]. Install it on the test's thread before calling the
/// plugin function.
#[derive(Debug, Clone)]
pub struct History {
    now: Timestamp,
    samples: BTreeMap<String, Vec<(Timestamp, f64)>>,
    config: BTreeMap<String, String>,
}

impl History {
    /// An empty history as seen at `now` (the context's evaluation time).
    pub fn new(now: Timestamp) -> Self {
        Self {
            now,
            samples: BTreeMap::new(),
            config: BTreeMap::new(),
        }
    }

    /// Records `value` for `metric`, `days_ago` days before `now`.
    pub fn sample(mut self, metric: &str, days_ago: i64, value: f64) -> Self {
        self.samples
            .entry(metric.to_string())
            .or_default()
            .push((self.now - days(days_ago), value));
        self
    }

    /// Records `value` for `metric` on each of the days
    /// `from_days_ago..to_days_ago` (a daily series).
    pub fn daily(mut self, metric: &str, from_days_ago: i64, to_days_ago: i64, value: f64) -> Self {
        for d in from_days_ago..to_days_ago {
            self = self.sample(metric, d, value);
        }
        self
    }

    /// Sets a configuration value the plugin reads with [`crate::config`].
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_string(), value.to_string());
        self
    }

    /// Makes this history (and configuration) the one the plugin sees on
    /// this thread, and clears the captured log.
    pub fn install(self) {
        FIXTURE.with(|f| {
            *f.borrow_mut() = Fixture {
                now: self.now,
                samples: self.samples,
                config: self.config,
                logs: Vec::new(),
            }
        });
    }
}

/// Runs a [`Ruleset`] natively on `ctx` as the SDK's glue runs it in Wasm:
/// its score, then its signals with the card among `ctx.scores`, then its
/// verdict on each. Returns the card and each signal with its verdict. An
/// error from `score` or `evaluate` fails the whole ruling, as it fails
/// the event's in the host; an error from `check` is a verdict that the
/// signal does not apply, as in the host.
pub fn rule<R: Ruleset>(
    ctx: &Context<'_>,
) -> Result<(ScoreCard, Vec<(Signal, Verdict)>), PluginError> {
    let card = R::score(ctx)?;
    let mut scored = ctx.clone();
    scored.scores.push(ScoreSummary {
        name: Cow::Owned(card.name.to_string()),
        value: card.value,
        band: Cow::Owned(card.band.to_string()),
        rag: card.rag,
    });
    let signals = R::evaluate(&scored)?;
    let mut checked = Vec::with_capacity(signals.len());
    for signal in signals {
        let verdict = R::check(&scored, &signal)
            .unwrap_or_else(|error| crate::__private::failed_check(&error));
        checked.push((signal, verdict));
    }
    Ok((card, checked))
}

/// The log lines the plugin wrote on this thread since the last install.
pub fn logs() -> Vec<(LogLevel, String)> {
    FIXTURE.with(|f| f.borrow().logs.clone())
}

pub(crate) fn record_log(level: LogLevel, message: &str) {
    FIXTURE.with(|f| f.borrow_mut().logs.push((level, message.to_string())));
}

pub(crate) fn fixture_config(key: &str) -> Option<String> {
    FIXTURE.with(|f| f.borrow().config.get(key).cloned())
}

pub(crate) fn fixture_window(metric: &str, days_len: u32, offset_days: u32) -> MetricWindow {
    FIXTURE.with(|f| {
        let f = f.borrow();
        let samples = f.samples.get(metric).map(Vec::as_slice).unwrap_or_default();
        aggregate_window(samples, f.now, days_len, offset_days)
    })
}

/// Aggregates time-ordered-or-not `(timestamp, value)` samples over the
/// window `(now - (offset + days), now - offset]` in days, as the host does:
/// a NaN or infinite sample is left out (the host never records one), and
/// of equal extremes (`0.0` and `-0.0`) the first seen is the minimum or
/// maximum.
pub fn aggregate_window(
    samples: &[(Timestamp, f64)],
    now: Timestamp,
    days_len: u32,
    offset_days: u32,
) -> MetricWindow {
    let end = now - days(i64::from(offset_days));
    let start = end - days(i64::from(days_len));
    let mut in_window: Vec<(Timestamp, f64)> = samples
        .iter()
        .copied()
        .filter(|(t, v)| *t > start && *t <= end && v.is_finite())
        .collect();
    in_window.sort_by_key(|(t, _)| *t);
    let mut w = MetricWindow {
        count: 0,
        sum: 0.0,
        min: 0.0,
        max: 0.0,
        first: 0.0,
        last: 0.0,
    };
    for (i, (_, v)) in in_window.iter().enumerate() {
        if i == 0 {
            w.min = *v;
            w.max = *v;
            w.first = *v;
        }
        w.count += 1;
        w.sum += v;
        if *v < w.min {
            w.min = *v;
        }
        if *v > w.max {
            w.max = *v;
        }
        w.last = *v;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_window_leaves_out_non_finite_samples_and_keeps_the_first_of_equal_extremes() {
        let now = DEFAULT_NOW;
        let samples = [
            (now - days(3), -0.0),
            (now - days(2), f64::NAN),
            (now - days(2), 0.0),
            (now - days(1), f64::INFINITY),
            (now, 4.5),
        ];
        let window = aggregate_window(&samples, now, 30, 0);
        assert_eq!(window.count, 3);
        assert_eq!(window.sum, 4.5);
        assert_eq!((window.min, window.max), (0.0, 4.5));
        assert!(window.min.is_sign_negative(), "the first of -0.0 and 0.0");
        assert_eq!((window.first, window.last), (0.0, 4.5));
    }
}
