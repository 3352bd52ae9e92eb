//! `health-triggers`: signals from the `health` score computed earlier in the
//! same evaluation.
//!
//! | signal | severity | cooldown | fires when |
//! |---|---|---|---|
//! | `health.critical` | Critical | 24 h | health < 30 |
//! | `health.declining` | High | 72 h | 30 ≤ health < 50 |
//! | `health.stable` | Low | 90 days | 50 ≤ health ≤ 70 |
//! | `health.optimal` | Info | 30 days | health > 70 |
//! | `health.below-60` | High | 24 h | health < 60: high priority alert and retention workflow |
//! | `health.trend-down` | High | 7 days | health is 20 % or more below its baseline, the mean health of the 30 days ending 7 days ago |
//! | `expansion.ready` | Medium | 30 days | expansion readiness > 80: sales handoff |
//! | `renewal.at-risk` | Critical ≤ 30 days, High ≤ 60, Medium ≤ 90 | 7 days | the renewal date is 0 to 90 days away and health is below 70 (not optimal) |
//!
//! Exactly one of the four band signals fires per evaluation; the bands are
//! those of [`health_band`]. Expansion readiness is
//! `0.5 × health + 0.3 × seat usage + 0.2 × usage growth`, where seat usage
//! is active users per licensed seat in percent, capped at 100 (0 without
//! seats), and usage growth reads the relative change of the mean
//! `active-users` of the last 30 days against the 30 before as
//! `50 + 250 × change`, clamped to 0–100 (flat reads 50, +20 % reads 100,
//! −20 % reads 0; 50 without history).
//!
//! Signals come in the order of the table. Without a `health` score in the
//! context there is nothing to trigger on and the plugin returns no signal.

use vigil_sdk::LogLevel;
use vigil_sdk::prelude::*;

/// Health below which the retention workflow starts (seed: "Health Score
/// < 60 → High Priority Alert + Retention Workflow").
const RETENTION_BELOW: f64 = 60.0;

/// Relative drop from the baseline that counts as a downward trend (seed:
/// "Health Trend ↓20% → Proactive Intervention Workflow").
const TREND_DROP: f64 = 0.20;

/// Expansion readiness above which sales takes over (seed: "Expansion
/// Readiness > 80 → Sales Handoff Workflow").
const EXPANSION_READY_ABOVE: f64 = 80.0;

/// Days before the renewal date the renewal workflow starts (seed: "90 Days
/// Before: renewal probability scoring"; 60 days: contract and pricing
/// preparation; 30 days: final contract preparation).
const RENEWAL_WINDOW_DAYS: i64 = 90;

/// Health above which a renewal is not at risk (the optimal band starts
/// above 70; at exactly 70 it is stable, so at risk).
const RENEWAL_SAFE_ABOVE: f64 = 70.0;

/// Usage-growth reading when there is no usable active-user history.
const NEUTRAL_GROWTH: f64 = 50.0;

/// Turns the health score in `ctx` into band, retention, trend and expansion
/// signals.
#[vigil_sdk::trigger(
    name = "health-triggers",
    description = "Health score triggers: the health band, health below 60, a 20 % downward health trend, expansion readiness above 80 and a renewal within 90 days at less than optimal health.",
    fuel = 2_000_000,
    windows = [("health", 30, 7), ("active-users", 30, 0), ("active-users", 30, 30)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let Some(health) = ctx.scores.iter().find(|s| s.name == "health") else {
        log(
            LogLevel::Debug,
            "no health score in this evaluation: no health signal",
        );
        return Ok(Vec::new());
    };
    let h = health.value;
    if !h.is_finite() {
        return Err(PluginError::InvalidInput(format!(
            "health score {h} is not a finite number"
        )));
    }

    let mut signals = vec![band_signal(ctx, h)];

    if h < RETENTION_BELOW {
        signals.push(
            SignalBuilder::new(
                ctx,
                "health.below-60",
                Severity::High,
                format!(
                    "health {} is below 60: high priority alert and retention workflow",
                    short_number(h)
                ),
            )
            .cooldown_hours(24)
            .build(),
        );
    }

    if let Some(baseline) = window("health", 30, 7).mean()
        && baseline > 0.0
    {
        let drop = (baseline - h) / baseline;
        if drop >= TREND_DROP {
            signals.push(
                SignalBuilder::new(
                    ctx,
                    "health.trend-down",
                    Severity::High,
                    format!(
                        "health {} is {}% below its baseline {} (mean of the 30 days ending 7 days ago), \
                         a drop of 20% or more: proactive intervention",
                        short_number(h),
                        short_number(drop * 100.0),
                        short_number(baseline)
                    ),
                )
                .cooldown_hours(168)
                .build(),
            );
        }
    }

    let readiness = Readiness::of(ctx, h);
    if readiness.value > EXPANSION_READY_ABOVE {
        signals.push(
            SignalBuilder::new(
                ctx,
                "expansion.ready",
                Severity::Medium,
                format!(
                    "expansion readiness {} is above 80 (health {}, seat usage {}, usage growth {}): sales handoff",
                    short_number(readiness.value),
                    short_number(h),
                    short_number(readiness.seat_usage),
                    short_number(readiness.usage_growth)
                ),
            )
            .cooldown_hours(720)
            .build(),
        );
    }

    signals.extend(renewal_risk(ctx, h));

    Ok(signals)
}

/// `renewal.at-risk` when the renewal is 0 to 90 days away and health is
/// not optimal; the nearer the renewal, the more severe.
fn renewal_risk(ctx: &Context<'_>, h: f64) -> Option<Signal> {
    let renewal = ctx.account.renewal_date?;
    // Within 90 days to the millisecond, as `tier-conditions` tags the
    // renewal window: counted in whole days, a renewal 90.5 days away would
    // be at risk here with no `renewal-window` tag on its verdict.
    let until = renewal - ctx.now;
    if !(0..=RENEWAL_WINDOW_DAYS * DAY_MS).contains(&until) || h > RENEWAL_SAFE_ABOVE {
        return None;
    }
    let days_left = until / DAY_MS;
    let (severity, stage) = match days_left {
        ..=30 => (Severity::Critical, "final contract preparation"),
        31..=60 => (Severity::High, "contract and pricing preparation"),
        _ => (Severity::Medium, "renewal probability review"),
    };
    Some(
        SignalBuilder::new(
            ctx,
            "renewal.at-risk",
            severity,
            format!(
                "renewal in {days_left} days at health {} (not above 70): {stage}",
                short_number(h)
            ),
        )
        .cooldown_hours(168)
        .build(),
    )
}

/// The one band signal for health `h`.
fn band_signal(ctx: &Context<'_>, h: f64) -> Signal {
    let v = short_number(h);
    let (name, severity, hours, reason) = if h < 30.0 {
        (
            "health.critical",
            Severity::Critical,
            24,
            format!("health {v} is below 30 (critical)"),
        )
    } else if h < 50.0 {
        (
            "health.declining",
            Severity::High,
            72,
            format!("health {v} is from 30 to below 50 (declining)"),
        )
    } else if h <= 70.0 {
        (
            "health.stable",
            Severity::Low,
            2160,
            format!("health {v} is from 50 to 70 (stable)"),
        )
    } else {
        (
            "health.optimal",
            Severity::Info,
            720,
            format!("health {v} is above 70 (optimal)"),
        )
    };
    SignalBuilder::new(ctx, name, severity, reason)
        .cooldown_hours(hours)
        .build()
}

/// Expansion readiness and the readings it is made of, each 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Readiness {
    value: f64,
    seat_usage: f64,
    usage_growth: f64,
}

impl Readiness {
    /// Readiness of the account in `ctx` at health `h`.
    fn of(ctx: &Context<'_>, h: f64) -> Self {
        let account = &ctx.account;
        let seat_usage = (ratio(account.active_users, account.licensed_seats) * 100.0).min(100.0);
        let recent = window("active-users", 30, 0).mean();
        let earlier = window("active-users", 30, 30).mean();
        let usage_growth = match (recent, earlier) {
            (Some(a), Some(p)) if p > 0.0 => {
                let change = a / p - 1.0;
                (NEUTRAL_GROWTH + change * 250.0).clamp(0.0, 100.0)
            }
            _ => NEUTRAL_GROWTH,
        };
        Self {
            value: 0.5 * h + 0.3 * seat_usage + 0.2 * usage_growth,
            seat_usage,
            usage_growth,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    const BANDS: [&str; 4] = [
        "health.critical",
        "health.declining",
        "health.stable",
        "health.optimal",
    ];

    fn ctx(health: f64, licensed: u32, active: u32) -> Context<'static> {
        ContextBuilder::new(AccountBuilder::new("acme").seats(licensed, active).build())
            .score_value("health", health)
            .build()
    }

    /// Evaluates health `h` on a default account (100 seats, 80 active)
    /// with an empty history.
    fn quiet(h: f64) -> Vec<Signal> {
        let ctx = ctx(h, 100, 80);
        History::new(ctx.now).install();
        evaluate(&ctx).unwrap()
    }

    fn names(signals: &[Signal]) -> Vec<&str> {
        signals.iter().map(|s| s.name.as_str()).collect()
    }

    fn bands(signals: &[Signal]) -> Vec<&str> {
        names(signals)
            .into_iter()
            .filter(|n| BANDS.contains(n))
            .collect()
    }

    fn find<'a>(signals: &'a [Signal], name: &str) -> Option<&'a Signal> {
        signals.iter().find(|s| s.name == name)
    }

    #[test]
    fn band_edges_follow_the_seed() {
        for (h, band) in [
            (29.99, "health.critical"),
            (30.0, "health.declining"),
            (49.99, "health.declining"),
            (50.0, "health.stable"),
            (70.0, "health.stable"),
            (70.01, "health.optimal"),
        ] {
            assert_eq!(bands(&quiet(h)), vec![band], "health {h}");
        }
    }

    #[test]
    fn bands_agree_with_the_sdk_health_band() {
        for h in [0.0, 29.99, 30.0, 49.99, 50.0, 70.0, 70.01, 100.0] {
            let expected = format!("health.{}", health_band(h).0);
            assert_eq!(bands(&quiet(h)), vec![expected.as_str()], "health {h}");
        }
    }

    #[test]
    fn band_signals_carry_their_severity_cooldown_and_reason() {
        let critical = quiet(24.5);
        let signal = find(&critical, "health.critical").unwrap();
        assert_eq!(signal.severity, Severity::Critical);
        assert_eq!(signal.cooldown_secs, 24 * 3600);
        assert_eq!(signal.reason, "health 24.5 is below 30 (critical)");
        assert_eq!(signal.dedup_key, "acme:health.critical");

        let declining = quiet(40.0);
        let signal = find(&declining, "health.declining").unwrap();
        assert_eq!(signal.severity, Severity::High);
        assert_eq!(signal.cooldown_secs, 72 * 3600);
        assert!(signal.reason.contains("health 40 "), "{}", signal.reason);

        let stable = quiet(65.0);
        let signal = find(&stable, "health.stable").unwrap();
        assert_eq!(signal.severity, Severity::Low);
        assert_eq!(signal.cooldown_secs, 2160 * 3600);

        let optimal = quiet(75.0);
        let signal = find(&optimal, "health.optimal").unwrap();
        assert_eq!(signal.severity, Severity::Info);
        assert_eq!(signal.cooldown_secs, 720 * 3600);
    }

    #[test]
    fn health_below_60_fires_at_59_9_and_not_at_60() {
        let signals = quiet(59.9);
        let signal = find(&signals, "health.below-60").unwrap();
        assert_eq!(signal.severity, Severity::High);
        assert_eq!(signal.cooldown_secs, 24 * 3600);
        assert!(
            signal.reason.contains("health 59.9 is below 60"),
            "{}",
            signal.reason
        );
        assert!(find(&quiet(60.0), "health.below-60").is_none());
    }

    #[test]
    fn a_drop_of_exactly_20_percent_from_the_baseline_is_a_downward_trend() {
        let ctx = ctx(40.0, 100, 80);
        History::new(ctx.now).daily("health", 7, 37, 50.0).install();
        let signals = evaluate(&ctx).unwrap();
        let signal = find(&signals, "health.trend-down").unwrap();
        assert_eq!(signal.severity, Severity::High);
        assert_eq!(signal.cooldown_secs, 168 * 3600);
        assert!(
            signal
                .reason
                .starts_with("health 40 is 20% below its baseline 50"),
            "{}",
            signal.reason
        );
    }

    #[test]
    fn a_drop_of_19_percent_is_not_a_downward_trend() {
        let ctx = ctx(40.5, 100, 80);
        History::new(ctx.now).daily("health", 7, 37, 50.0).install();
        assert!(find(&evaluate(&ctx).unwrap(), "health.trend-down").is_none());
    }

    #[test]
    fn without_health_history_there_is_no_trend() {
        assert!(find(&quiet(10.0), "health.trend-down").is_none());
    }

    #[test]
    fn the_last_7_days_are_not_part_of_the_baseline() {
        let ctx = ctx(40.0, 100, 80);
        History::new(ctx.now).daily("health", 0, 7, 90.0).install();
        assert!(find(&evaluate(&ctx).unwrap(), "health.trend-down").is_none());
    }

    #[test]
    fn a_rising_health_is_not_a_downward_trend() {
        let ctx = ctx(60.0, 100, 80);
        History::new(ctx.now).daily("health", 7, 37, 40.0).install();
        assert!(find(&evaluate(&ctx).unwrap(), "health.trend-down").is_none());
    }

    #[test]
    fn an_engaged_healthy_account_is_ready_for_expansion() {
        // 0.5 × 90 + 0.3 × 95 + 0.2 × 50 = 83.5
        let signals = {
            let ctx = ctx(90.0, 100, 95);
            History::new(ctx.now).install();
            evaluate(&ctx).unwrap()
        };
        let signal = find(&signals, "expansion.ready").unwrap();
        assert_eq!(signal.severity, Severity::Medium);
        assert_eq!(signal.cooldown_secs, 720 * 3600);
        assert!(
            signal
                .reason
                .starts_with("expansion readiness 83.5 is above 80"),
            "{}",
            signal.reason
        );
    }

    #[test]
    fn readiness_of_exactly_80_is_not_ready_and_80_5_is() {
        // 0.5 × 80 + 0.3 × 100 + 0.2 × 50 = 80
        let ctx80 = ctx(80.0, 100, 100);
        History::new(ctx80.now).install();
        assert_eq!(Readiness::of(&ctx80, 80.0).value, 80.0);
        assert!(find(&evaluate(&ctx80).unwrap(), "expansion.ready").is_none());

        let ctx81 = ctx(81.0, 100, 100);
        History::new(ctx81.now).install();
        let signals = evaluate(&ctx81).unwrap();
        let signal = find(&signals, "expansion.ready").unwrap();
        assert!(
            signal.reason.contains("readiness 80.5 "),
            "{}",
            signal.reason
        );
    }

    #[test]
    fn active_user_growth_lifts_readiness_over_80() {
        // Flat: 0.5 × 80 + 0.3 × 80 + 0.2 × 50 = 74.
        assert!(find(&quiet(80.0), "expansion.ready").is_none());

        // +20 % active users: growth reads 100, readiness 84.
        let ctx = ctx(80.0, 100, 80);
        History::new(ctx.now)
            .daily("active-users", 0, 30, 120.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        let readiness = Readiness::of(&ctx, 80.0);
        assert!(
            (readiness.usage_growth - 100.0).abs() < 1e-9,
            "{readiness:?}"
        );
        assert!((readiness.value - 84.0).abs() < 1e-9, "{readiness:?}");
        assert!(find(&evaluate(&ctx).unwrap(), "expansion.ready").is_some());
    }

    #[test]
    fn usage_growth_is_clamped_and_neutral_without_earlier_history() {
        let ctx = ctx(80.0, 100, 80);
        History::new(ctx.now)
            .daily("active-users", 0, 30, 50.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        assert_eq!(Readiness::of(&ctx, 80.0).usage_growth, 0.0);

        History::new(ctx.now)
            .daily("active-users", 0, 30, 500.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        assert_eq!(Readiness::of(&ctx, 80.0).usage_growth, 100.0);

        History::new(ctx.now)
            .daily("active-users", 0, 30, 500.0)
            .install();
        assert_eq!(Readiness::of(&ctx, 80.0).usage_growth, NEUTRAL_GROWTH);
    }

    #[test]
    fn seat_usage_is_capped_at_100_and_zero_without_seats() {
        let over = ctx(80.0, 100, 150);
        History::new(over.now).install();
        assert_eq!(Readiness::of(&over, 80.0).seat_usage, 100.0);

        // 0.5 × 100 + 0.3 × 0 + 0.2 × 50 = 60: a perfect health alone is not enough.
        let seatless = ctx(100.0, 0, 0);
        History::new(seatless.now).install();
        assert_eq!(Readiness::of(&seatless, 100.0).seat_usage, 0.0);
        assert_eq!(names(&evaluate(&seatless).unwrap()), vec!["health.optimal"]);
    }

    #[test]
    fn without_a_health_score_there_are_no_signals() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme").build())
            .score_value("lead", 10.0)
            .build();
        History::new(ctx.now).daily("health", 7, 37, 90.0).install();
        assert!(evaluate(&ctx).unwrap().is_empty());
        assert_eq!(vigil_sdk::testing::logs().len(), 1);
    }

    #[test]
    fn a_non_finite_health_score_is_invalid_input() {
        let ctx = ctx(f64::NAN, 100, 80);
        History::new(ctx.now).install();
        assert!(matches!(evaluate(&ctx), Err(PluginError::InvalidInput(_))));
    }

    fn renewing(health: f64, days_left: i64) -> Vec<Signal> {
        renewing_in(health, days_left * DAY_MS)
    }

    fn renewing_in(health: f64, until_ms: i64) -> Vec<Signal> {
        let now = vigil_sdk::testing::DEFAULT_NOW;
        let account = AccountBuilder::new("acme")
            .seats(100, 80)
            .renews_at(now + until_ms)
            .build();
        let ctx = ContextBuilder::new(account)
            .score_value("health", health)
            .build();
        History::new(ctx.now).install();
        evaluate(&ctx).unwrap()
    }

    #[test]
    fn a_renewal_within_90_days_at_less_than_optimal_health_is_at_risk_and_nearer_is_worse() {
        for (days, severity) in [
            (0, Severity::Critical),
            (30, Severity::Critical),
            (31, Severity::High),
            (60, Severity::High),
            (61, Severity::Medium),
            (90, Severity::Medium),
        ] {
            let signals = renewing(55.0, days);
            let signal = find(&signals, "renewal.at-risk")
                .unwrap_or_else(|| panic!("no renewal signal {days} days out"));
            assert_eq!(signal.severity, severity, "{days} days");
            assert_eq!(signal.cooldown_secs, 168 * 3600);
            assert!(
                signal
                    .reason
                    .contains(&format!("renewal in {days} days at health 55")),
                "{}",
                signal.reason
            );
        }
        assert!(find(&renewing(55.0, 91), "renewal.at-risk").is_none());
        assert!(find(&renewing(55.0, -1), "renewal.at-risk").is_none());
        assert!(find(&renewing(70.0, 10), "renewal.at-risk").is_some());
        assert!(find(&renewing(70.01, 10), "renewal.at-risk").is_none());
    }

    #[test]
    fn the_renewal_window_ends_90_days_out_to_the_millisecond_as_tier_conditions_tags_it() {
        let at_risk = |until_ms| find(&renewing_in(55.0, until_ms), "renewal.at-risk").is_some();
        assert!(at_risk(90 * DAY_MS));
        assert!(!at_risk(90 * DAY_MS + 1));
        assert!(!at_risk(90 * DAY_MS + DAY_MS / 2));
        assert!(at_risk(89 * DAY_MS + DAY_MS / 2));
        assert!(!at_risk(-1));
    }

    #[test]
    fn signals_come_in_a_fixed_order_and_repeat_exactly() {
        let critical = ctx(20.0, 100, 80);
        History::new(critical.now)
            .daily("health", 7, 37, 50.0)
            .install();
        let first = evaluate(&critical).unwrap();
        assert_eq!(
            names(&first),
            vec!["health.critical", "health.below-60", "health.trend-down"]
        );
        assert_eq!(evaluate(&critical).unwrap(), first);

        // 0.5 × 78 + 0.3 × 100 + 0.2 × 100 = 89, and 78 is 22 % below 100.
        let optimal = ctx(78.0, 100, 100);
        History::new(optimal.now)
            .daily("health", 7, 37, 100.0)
            .daily("active-users", 0, 30, 130.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        let first = evaluate(&optimal).unwrap();
        assert_eq!(
            names(&first),
            vec!["health.optimal", "health.trend-down", "expansion.ready"]
        );
        assert_eq!(evaluate(&optimal).unwrap(), first);
    }
}
