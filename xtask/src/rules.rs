//! The bench rule set, defined once here and implemented four times: in
//! native Rust ([`native`]), as vigil plugins (`xtask/components`, run
//! through [`vigil_host::pipeline::Pipeline`]), as a rhai script
//! (`xtask/src/rules.rhai`) and as a zen-engine decision graph
//! (`xtask/src/rules.json`).
//!
//! # The rule set
//!
//! For every event of an account, after the event is recorded into the
//! account's history (as the host records it: a sample `1` under the event
//! kind, a sample under each numeric payload field), with `now` the event's
//! time and `window(metric, days, offset)` the history aggregates the
//! `history` import serves:
//!
//! **Health score** — the standard `health-score` plugin's rules, each
//! reading clamped to 0–100, the value the sum of `weight × reading`
//! clamped to 0–100:
//!
//! | factor | weight | reading |
//! |---|---|---|
//! | usage | 0.30 | `active / seats × 125` |
//! | login trend | 0.20 | logins `L = window(logins,30,0).sum` against `E = window(logins,30,30).sum`: without earlier samples or `E ≤ 0`, 100 if `L > 0` else 50; otherwise with `c = L/E − 1`, `75 + 100c` when `c ≥ 0`, else `75 + 150c` |
//! | support load | 0.15 | `100 − 5 × (tickets in 30 days × 100 / seats)` |
//! | sentiment | 0.20 | mean NPS `n` and mean sentiment `s` over 90 days: `(10n + 50(s+1)) / 2`, `10n` or `50(s+1)` with one of them, 50 with neither |
//! | payment health | 0.15 | `100 − 100 × d / 60`, `d` the latest `payment-days-overdue` of 90 days (at least 0; 0 without one) |
//!
//! The score is then rounded to 9 decimals — so that binary (`f64`) and
//! decimal (zen-engine) arithmetic, which differ in the last digits, band
//! and compare a score alike — and banded: critical below 30, declining
//! below 50, stable up to 70, optimal above. It is recorded into the
//! history as `health`.
//!
//! **Three triggers**, each signal with a severity:
//! 1. health (`h` the score): exactly one band signal — `health.critical`
//!    (critical), `health.declining` (high), `health.stable` (low),
//!    `health.optimal` (info); `health.below-60` (high) when `h < 60`;
//!    `health.trend-down` (high) when the mean `health` of the 30 days
//!    ending 7 days ago, `b`, is positive and `(b − h)/b ≥ 0.2`.
//! 2. usage: with seats, `usage.none` (critical) when no user is active,
//!    else `usage.low` (medium) when `active/seats < 0.3`;
//!    `usage.login-decline` (high) when `E > 0` and `L < 0.5 E`.
//! 3. tickets: `support.ticket-spike` (high) when the tickets of the last 7
//!    days `r ≥ 3` and `r > 2 × (tickets of the 28 days ending 7 days ago) / 4`.
//!
//! **Tier condition**, for every signal — the standard `tier-conditions`
//! plugin's rules: policy tags of the tier, then of the industry
//! (healthcare, financial services, e-commerce), then `renewal-overdue`
//! (renewal date before now) or `renewal-window` (at most 90 days ahead);
//! the signal applies unless it is an info signal on a small-business
//! account.
//!
//! Not part of the rule set: the human notes and reasons the standard
//! plugins format (the four implementations return fixed text or none),
//! cooldowns (the bench triggers set none, so every signal reaches the
//! condition) and actions.
//!
//! # Agreement
//!
//! For every event the four must give the same score within
//! [`SCORE_TOLERANCE`] (zen-engine computes in decimal, the others in
//! `f64`), the same band, the same signals (name and severity) and the same
//! verdicts (applies, and the policy tags of a signal that applies: the
//! pipeline keeps no tags for one that does not).

use std::fmt;

use vigil_host::history::{DAY_MS, MetricHistory};
use vigil_host::runtime::bindings::types::{Industry, Tier};

/// How far two scores may differ and still agree.
pub const SCORE_TOLERANCE: f64 = 1e-6;

/// The most a renewal may be ahead and open the renewal window.
pub const RENEWAL_WINDOW_MS: i64 = 90 * DAY_MS;

/// Everything the rules read about one account at one event: its snapshot
/// and the history windows the rules ask for. The host gathers these (the
/// same windows the bench plugins declare, which the pipeline computes for
/// them) and hands them to native Rust, rhai and zen-engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    /// The account's tier.
    pub tier: Tier,
    /// The account's industry.
    pub industry: Industry,
    /// Licensed seats.
    pub seats: u32,
    /// Active users.
    pub active: u32,
    /// Milliseconds from now to the renewal date, if there is one.
    pub renewal_in_ms: Option<i64>,
    /// Logins of the last 30 days.
    pub logins_recent: f64,
    /// Logins of the 30 days before those.
    pub logins_earlier: f64,
    /// Login samples of the 30 days before those.
    pub logins_earlier_count: u32,
    /// Tickets opened in the last 30 days.
    pub tickets_30: u32,
    /// Tickets opened in the last 7 days.
    pub tickets_7: u32,
    /// Tickets opened in the 28 days ending 7 days ago.
    pub tickets_before: u32,
    /// NPS samples of the last 90 days, and their sum.
    pub nps: (u32, f64),
    /// Sentiment samples of the last 90 days, and their sum.
    pub sentiment: (u32, f64),
    /// Overdue-payment samples of the last 90 days, and the latest.
    pub overdue: (u32, f64),
    /// Health samples of the 30 days ending 7 days ago, and their sum.
    pub baseline: (u32, f64),
}

impl Facts {
    /// Gathers the facts for `account` at `now` from `history`.
    pub fn gather(
        account: &vigil_host::runtime::bindings::types::Account,
        history: &MetricHistory,
        now: i64,
    ) -> Self {
        let w = |metric: &str, days: u32, offset: u32| history.window(metric, now, days, offset);
        let earlier_logins = w("logins", 30, 30);
        let nps = w("nps", 90, 0);
        let sentiment = w("sentiment", 90, 0);
        let overdue = w("payment-days-overdue", 90, 0);
        let baseline = w("health", 30, 7);
        Self {
            tier: account.tier,
            industry: account.industry,
            seats: account.licensed_seats,
            active: account.active_users,
            renewal_in_ms: account.renewal_date.map(|r| r - now),
            logins_recent: w("logins", 30, 0).sum,
            logins_earlier: earlier_logins.sum,
            logins_earlier_count: earlier_logins.count,
            tickets_30: w("support.ticket.opened", 30, 0).count,
            tickets_7: w("support.ticket.opened", 7, 0).count,
            tickets_before: w("support.ticket.opened", 28, 7).count,
            nps: (nps.count, nps.sum),
            sentiment: (sentiment.count, sentiment.sum),
            overdue: (overdue.count, overdue.last),
            baseline: (baseline.count, baseline.sum),
        }
    }
}

/// One engine's result for one event, in the form the engines are compared
/// in.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The health score.
    pub score: f64,
    /// Its band.
    pub band: String,
    /// The signals and their verdicts, by name.
    pub signals: Vec<SignalOutcome>,
}

/// A signal and the condition's verdict on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignalOutcome {
    /// The signal's name.
    pub name: String,
    /// Its severity (`critical`, `high`, `medium`, `low`, `info`).
    pub severity: String,
    /// Whether it applies.
    pub applies: bool,
    /// The verdict's policy tags, in order (empty when it does not apply).
    pub tags: Vec<String>,
}

impl Outcome {
    /// Puts the signals in name order and drops the tags of verdicts that do
    /// not apply, so that outcomes compare as the rule set says.
    pub fn normalized(mut self) -> Self {
        for signal in &mut self.signals {
            if !signal.applies {
                signal.tags.clear();
            }
        }
        self.signals.sort();
        self
    }

    /// Why `self` and `other` disagree, if they do.
    pub fn disagreement(&self, other: &Outcome) -> Option<String> {
        if (self.score - other.score).abs() > SCORE_TOLERANCE || !self.score.is_finite() {
            return Some(format!("score {} against {}", self.score, other.score));
        }
        if self.band != other.band {
            return Some(format!("band {} against {}", self.band, other.band));
        }
        if self.signals != other.signals {
            return Some(format!(
                "signals {:?} against {:?}",
                self.signals, other.signals
            ));
        }
        None
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} {}", self.score, self.band)?;
        for signal in &self.signals {
            write!(
                f,
                " {}({}, {})",
                signal.name,
                signal.severity,
                if signal.applies { "applies" } else { "n/a" }
            )?;
        }
        Ok(())
    }
}

/// The rule set in plain Rust.
pub mod native {
    use super::{Facts, Industry, Outcome, RENEWAL_WINDOW_MS, SignalOutcome, Tier};

    /// A signal's severity.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Severity {
        /// Handle now.
        Critical,
        /// Handle today.
        High,
        /// Handle soon.
        Medium,
        /// Handle in the normal course of work.
        Low,
        /// For the record.
        Info,
    }

    impl Severity {
        /// Its name.
        pub fn name(self) -> &'static str {
            match self {
                Severity::Critical => "critical",
                Severity::High => "high",
                Severity::Medium => "medium",
                Severity::Low => "low",
                Severity::Info => "info",
            }
        }
    }

    /// A signal with the condition's verdict.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Checked {
        /// The signal's name.
        pub name: &'static str,
        /// Its severity.
        pub severity: Severity,
        /// Whether it applies.
        pub applies: bool,
        /// The verdict's policy tags.
        pub tags: Vec<&'static str>,
    }

    /// The native result of one event.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Result {
        /// The health score.
        pub score: f64,
        /// Its band.
        pub band: &'static str,
        /// The signals, with their verdicts.
        pub signals: Vec<Checked>,
    }

    impl Result {
        /// As an [`Outcome`].
        pub fn outcome(&self) -> Outcome {
            Outcome {
                score: self.score,
                band: self.band.to_string(),
                signals: self
                    .signals
                    .iter()
                    .map(|s| SignalOutcome {
                        name: s.name.to_string(),
                        severity: s.severity.name().to_string(),
                        applies: s.applies,
                        tags: s.tags.iter().map(|t| (*t).to_string()).collect(),
                    })
                    .collect(),
            }
            .normalized()
        }
    }

    fn clamp(value: f64) -> f64 {
        if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 100.0)
        }
    }

    /// The health score.
    pub fn score(f: &Facts) -> f64 {
        let seats = f64::from(f.seats);
        let usage = f64::from(f.active) / seats;
        let login = if f.logins_earlier_count == 0 || f.logins_earlier <= 0.0 {
            if f.logins_recent > 0.0 { 100.0 } else { 50.0 }
        } else {
            let change = f.logins_recent / f.logins_earlier - 1.0;
            if change >= 0.0 {
                75.0 + change * 100.0
            } else {
                75.0 + change * 150.0
            }
        };
        let per_100_seats = f64::from(f.tickets_30) * 100.0 / seats;
        let mean = |(count, sum): (u32, f64)| (count > 0).then(|| sum / f64::from(count));
        let sentiment = match (mean(f.nps), mean(f.sentiment)) {
            (Some(n), Some(s)) => (n * 10.0 + (s + 1.0) * 50.0) / 2.0,
            (Some(n), None) => n * 10.0,
            (None, Some(s)) => (s + 1.0) * 50.0,
            (None, None) => 50.0,
        };
        let overdue = if f.overdue.0 == 0 {
            0.0
        } else {
            f.overdue.1.max(0.0)
        };
        // Summed in the order the score card adds its contributions.
        let contributions = [
            0.30 * clamp(usage * 125.0),
            0.20 * clamp(login),
            0.15 * clamp(100.0 - per_100_seats * 5.0),
            0.20 * clamp(sentiment),
            0.15 * clamp(100.0 - overdue * 100.0 / 60.0),
        ];
        let value = clamp(contributions.iter().sum());
        (value * 1e9).round() / 1e9
    }

    /// The band of a health score.
    pub fn band(h: f64) -> &'static str {
        if h < 30.0 {
            "critical"
        } else if h < 50.0 {
            "declining"
        } else if h <= 70.0 {
            "stable"
        } else {
            "optimal"
        }
    }

    /// The three triggers' signals.
    pub fn signals(f: &Facts, h: f64) -> Vec<(&'static str, Severity)> {
        let mut signals = Vec::with_capacity(4);
        signals.push(match band(h) {
            "critical" => ("health.critical", Severity::Critical),
            "declining" => ("health.declining", Severity::High),
            "stable" => ("health.stable", Severity::Low),
            _ => ("health.optimal", Severity::Info),
        });
        if h < 60.0 {
            signals.push(("health.below-60", Severity::High));
        }
        if f.baseline.0 > 0 {
            let baseline = f.baseline.1 / f64::from(f.baseline.0);
            if baseline > 0.0 && (baseline - h) / baseline >= 0.20 {
                signals.push(("health.trend-down", Severity::High));
            }
        }
        if f.seats > 0 {
            if f.active == 0 {
                signals.push(("usage.none", Severity::Critical));
            } else if f64::from(f.active) / f64::from(f.seats) < 0.30 {
                signals.push(("usage.low", Severity::Medium));
            }
        }
        if f.logins_earlier > 0.0 && f.logins_recent < 0.5 * f.logins_earlier {
            signals.push(("usage.login-decline", Severity::High));
        }
        let baseline_tickets = f64::from(f.tickets_before) / 4.0;
        if f.tickets_7 >= 3 && f64::from(f.tickets_7) > 2.0 * baseline_tickets {
            signals.push(("support.ticket-spike", Severity::High));
        }
        signals
    }

    /// The tier condition's verdict on a signal: applies, and the tags.
    pub fn check(f: &Facts, severity: Severity) -> (bool, Vec<&'static str>) {
        let tier: &[&'static str] = match f.tier {
            Tier::Enterprise => &[
                "monitoring-24x7",
                "dedicated-csm",
                "executive-business-review",
                "custom-metrics",
                "executive-notification",
            ],
            Tier::MidMarket => &[
                "business-hours-monitoring",
                "shared-csm",
                "quarterly-review",
                "standard-metrics",
            ],
            Tier::SmallBusiness => &[
                "automated-monitoring",
                "self-service-first",
                "biannual-check-in",
                "basic-metrics",
            ],
        };
        let industry: &[&'static str] = match f.industry {
            Industry::Healthcare => &["hipaa", "fda", "security-audit", "training-certification"],
            Industry::FinancialServices => &["sox", "pci-dss", "audit-trail", "risk-assessment"],
            Industry::ECommerce => &["revenue-impact", "seasonality-planning"],
            _ => &[],
        };
        let contract: &[&'static str] = match f.renewal_in_ms {
            Some(left) if left < 0 => &["renewal-overdue"],
            Some(left) if left <= RENEWAL_WINDOW_MS => &["renewal-window"],
            _ => &[],
        };
        let mut tags = Vec::with_capacity(tier.len() + industry.len() + contract.len());
        tags.extend_from_slice(tier);
        tags.extend_from_slice(industry);
        tags.extend_from_slice(contract);
        let applies = !(f.tier == Tier::SmallBusiness && severity == Severity::Info);
        (applies, tags)
    }

    /// The whole rule set for one event.
    pub fn evaluate(f: &Facts) -> Result {
        let score = score(f);
        let signals = signals(f, score)
            .into_iter()
            .map(|(name, severity)| {
                let (applies, tags) = check(f, severity);
                Checked {
                    name,
                    severity,
                    applies,
                    tags,
                }
            })
            .collect();
        Result {
            score,
            band: band(score),
            signals,
        }
    }
}
