//! `usage-triggers`: signals from seat usage, active-user growth, logins and
//! support tickets (the usage-based triggers and behavioural indicators).
//!
//! | signal | severity | cooldown | fires when |
//! |---|---|---|---|
//! | `usage.none` | Critical | 24 h | the account has licensed seats and no active user: emergency intervention |
//! | `usage.low` | Medium | 7 days | some, but fewer than 30 %, of the licensed seats are active |
//! | `usage.growth` | Low | 30 days | mean `active-users` of the last 30 days is more than 20 % above the mean of the 30 before |
//! | `usage.login-decline` | High | 7 days | `logins` of the last 30 days are less than half those of the 30 before |
//! | `support.ticket-spike` | High | 72 h | 3 or more tickets opened in the last 7 days, and more than twice the weekly average of the 4 weeks before |
//!
//! Seat usage is `active users / licensed seats` from the account; an account
//! without licensed seats gets no seat-usage signal. A rule whose earlier
//! period has no history (no `active-users` samples, no logins) does not
//! fire: there is nothing to compare against yet.
//!
//! Signals come in the order of the table.

use vigil_sdk::prelude::*;

/// Share of licensed seats in use below which usage is low (seed: "Low Usage
/// Detection (< 30% of licensed users)").
const LOW_USAGE_BELOW: f64 = 0.30;

/// Month-over-month active-user growth above which usage grows fast (seed:
/// "High Usage Growth (> 20% MoM)").
const GROWTH_ABOVE: f64 = 0.20;

/// Share of the earlier logins below which logins declined (seed: "Login
/// frequency decline > 50%").
const LOGIN_DECLINE_BELOW: f64 = 0.5;

/// Fewest tickets in a week that can make a spike.
const SPIKE_MIN_TICKETS: u32 = 3;

/// How many times the weekly baseline a week's tickets must exceed to spike.
const SPIKE_FACTOR: f64 = 2.0;

/// Turns the account's seat usage and its usage, login and ticket history
/// into signals.
#[vigil_sdk::trigger(
    name = "usage-triggers",
    description = "Usage and behaviour triggers: no usage, low seat usage, usage growth, login decline and support ticket spikes.",
    fuel = 2_000_000,
    windows = [
        ("active-users", 30, 0),
        ("active-users", 30, 30),
        ("logins", 30, 0),
        ("logins", 30, 30),
        ("support.ticket.opened", 7, 0),
        ("support.ticket.opened", 28, 7),
    ]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let mut signals = Vec::new();
    signals.extend(seat_usage(ctx));
    signals.extend(usage_growth(ctx));
    signals.extend(login_decline(ctx));
    signals.extend(ticket_spike(ctx));
    Ok(signals)
}

/// `usage.none` or `usage.low` from the account's seats.
fn seat_usage(ctx: &Context<'_>) -> Option<Signal> {
    let seats = ctx.account.licensed_seats;
    let active = ctx.account.active_users;
    if seats == 0 {
        return None;
    }
    if active == 0 {
        return Some(
            SignalBuilder::new(
                ctx,
                "usage.none",
                Severity::Critical,
                format!(
                    "0 of {seats} licensed seats are active (no usage): emergency intervention"
                ),
            )
            .cooldown_hours(24)
            .build(),
        );
    }
    let usage = ratio(active, seats);
    (usage < LOW_USAGE_BELOW).then(|| {
        SignalBuilder::new(
            ctx,
            "usage.low",
            Severity::Medium,
            format!(
                "{active} of {seats} licensed seats are active ({}%), below 30% (low usage)",
                short_number(usage * 100.0)
            ),
        )
        .cooldown_hours(168)
        .build()
    })
}

/// `usage.growth` from the mean active users of the last 30 days against
/// the 30 before.
fn usage_growth(ctx: &Context<'_>) -> Option<Signal> {
    let recent = window("active-users", 30, 0).mean()?;
    let earlier = window("active-users", 30, 30).mean()?;
    if earlier <= 0.0 {
        return None;
    }
    let growth = recent / earlier - 1.0;
    (growth > GROWTH_ABOVE).then(|| {
        SignalBuilder::new(
            ctx,
            "usage.growth",
            Severity::Low,
            format!(
                "active users grew {}% month over month (mean {} in the last 30 days vs {} in the 30 before), above 20% (high usage growth)",
                short_number(growth * 100.0),
                short_number(recent),
                short_number(earlier)
            ),
        )
        .cooldown_hours(720)
        .build()
    })
}

/// `usage.login-decline` from the logins of the last 30 days against the 30
/// before.
fn login_decline(ctx: &Context<'_>) -> Option<Signal> {
    let recent = window("logins", 30, 0).sum;
    let earlier = window("logins", 30, 30).sum;
    if earlier <= 0.0 || recent >= LOGIN_DECLINE_BELOW * earlier {
        return None;
    }
    let decline = 1.0 - recent / earlier;
    Some(
        SignalBuilder::new(
            ctx,
            "usage.login-decline",
            Severity::High,
            format!(
                "logins fell {}% to {} in the last 30 days from {} in the 30 before, a decline of more than 50%",
                short_number(decline * 100.0),
                short_number(recent),
                short_number(earlier)
            ),
        )
        .cooldown_hours(168)
        .build(),
    )
}

/// `support.ticket-spike` from the tickets of the last 7 days against the
/// weekly average of the 4 weeks before.
fn ticket_spike(ctx: &Context<'_>) -> Option<Signal> {
    let recent = window("support.ticket.opened", 7, 0).count;
    let baseline = f64::from(window("support.ticket.opened", 28, 7).count) / 4.0;
    if recent < SPIKE_MIN_TICKETS || f64::from(recent) <= SPIKE_FACTOR * baseline {
        return None;
    }
    Some(
        SignalBuilder::new(
            ctx,
            "support.ticket-spike",
            Severity::High,
            format!(
                "{recent} support tickets opened in the last 7 days, more than twice the weekly average of {} over the 4 weeks before (ticket volume spike)",
                short_number(baseline)
            ),
        )
        .cooldown_hours(72)
        .build(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    fn ctx(licensed: u32, active: u32) -> Context<'static> {
        ContextBuilder::new(AccountBuilder::new("acme").seats(licensed, active).build()).build()
    }

    /// Evaluates an account with `licensed` seats and `active` users and an
    /// empty history.
    fn quiet(licensed: u32, active: u32) -> Vec<Signal> {
        let ctx = ctx(licensed, active);
        History::new(ctx.now).install();
        evaluate(&ctx).unwrap()
    }

    fn names(signals: &[Signal]) -> Vec<&str> {
        signals.iter().map(|s| s.name.as_str()).collect()
    }

    fn find<'a>(signals: &'a [Signal], name: &str) -> Option<&'a Signal> {
        signals.iter().find(|s| s.name == name)
    }

    /// Adds one ticket on each of `days_ago`.
    fn tickets(mut history: History, days_ago: &[i64]) -> History {
        for d in days_ago {
            history = history.sample("support.ticket.opened", *d, 1.0);
        }
        history
    }

    #[test]
    fn licensed_seats_without_an_active_user_are_no_usage() {
        let signals = quiet(100, 0);
        assert_eq!(names(&signals), vec!["usage.none"]);
        let signal = &signals[0];
        assert_eq!(signal.severity, Severity::Critical);
        assert_eq!(signal.cooldown_secs, 24 * 3600);
        assert_eq!(signal.dedup_key, "acme:usage.none");
        assert!(
            signal.reason.contains("0 of 100 licensed seats"),
            "{}",
            signal.reason
        );
    }

    #[test]
    fn one_active_user_is_low_usage_not_no_usage() {
        assert_eq!(names(&quiet(100, 1)), vec!["usage.low"]);
    }

    #[test]
    fn usage_is_low_at_29_percent_of_seats_and_not_at_30() {
        let signals = quiet(100, 29);
        let signal = find(&signals, "usage.low").unwrap();
        assert_eq!(signal.severity, Severity::Medium);
        assert_eq!(signal.cooldown_secs, 168 * 3600);
        assert_eq!(
            signal.reason,
            "29 of 100 licensed seats are active (29%), below 30% (low usage)"
        );
        assert!(find(&quiet(1000, 299), "usage.low").is_some());
        assert!(quiet(100, 30).is_empty());
    }

    #[test]
    fn active_users_growing_21_percent_is_usage_growth_and_20_is_not() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .daily("active-users", 0, 30, 121.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        let signals = evaluate(&ctx).unwrap();
        let signal = find(&signals, "usage.growth").unwrap();
        assert_eq!(signal.severity, Severity::Low);
        assert_eq!(signal.cooldown_secs, 720 * 3600);
        assert!(
            signal
                .reason
                .starts_with("active users grew 21% month over month"),
            "{}",
            signal.reason
        );

        History::new(ctx.now)
            .daily("active-users", 0, 30, 120.0)
            .daily("active-users", 30, 60, 100.0)
            .install();
        assert!(find(&evaluate(&ctx).unwrap(), "usage.growth").is_none());
    }

    #[test]
    fn usage_growth_needs_an_earlier_month_to_compare_against() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .daily("active-users", 0, 30, 120.0)
            .install();
        assert!(evaluate(&ctx).unwrap().is_empty());

        History::new(ctx.now)
            .daily("active-users", 0, 30, 120.0)
            .daily("active-users", 30, 60, 0.0)
            .install();
        assert!(evaluate(&ctx).unwrap().is_empty());
    }

    #[test]
    fn logins_falling_below_half_are_a_decline_and_exactly_half_is_not() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .sample("logins", 1, 149.0)
            .sample("logins", 40, 300.0)
            .install();
        let signals = evaluate(&ctx).unwrap();
        let signal = find(&signals, "usage.login-decline").unwrap();
        assert_eq!(signal.severity, Severity::High);
        assert_eq!(signal.cooldown_secs, 168 * 3600);
        assert!(
            signal
                .reason
                .starts_with("logins fell 50.33% to 149 in the last 30 days from 300"),
            "{}",
            signal.reason
        );

        History::new(ctx.now)
            .sample("logins", 1, 150.0)
            .sample("logins", 40, 300.0)
            .install();
        assert!(find(&evaluate(&ctx).unwrap(), "usage.login-decline").is_none());
    }

    #[test]
    fn logins_without_an_earlier_month_are_no_decline() {
        let ctx = ctx(100, 80);
        History::new(ctx.now).daily("logins", 0, 30, 0.0).install();
        assert!(evaluate(&ctx).unwrap().is_empty());
    }

    #[test]
    fn three_tickets_in_a_quiet_week_are_a_spike_and_two_are_not() {
        let ctx = ctx(100, 80);
        tickets(History::new(ctx.now), &[0, 2, 6]).install();
        let signals = evaluate(&ctx).unwrap();
        let signal = find(&signals, "support.ticket-spike").unwrap();
        assert_eq!(signal.severity, Severity::High);
        assert_eq!(signal.cooldown_secs, 72 * 3600);
        assert!(
            signal
                .reason
                .starts_with("3 support tickets opened in the last 7 days"),
            "{}",
            signal.reason
        );

        tickets(History::new(ctx.now), &[0, 6]).install();
        assert!(evaluate(&ctx).unwrap().is_empty());
    }

    #[test]
    fn a_spike_must_exceed_twice_the_weekly_baseline() {
        // 10 tickets over the 4 weeks before: a baseline of 2.5 a week.
        let ctx = ctx(100, 80);
        let earlier = [7, 9, 11, 14, 17, 20, 24, 28, 31, 34];
        tickets(History::new(ctx.now), &earlier).install();
        assert!(evaluate(&ctx).unwrap().is_empty());

        let five = tickets(History::new(ctx.now), &earlier);
        tickets(five, &[0, 1, 2, 3, 4]).install();
        assert!(find(&evaluate(&ctx).unwrap(), "support.ticket-spike").is_none());

        let six = tickets(History::new(ctx.now), &earlier);
        tickets(six, &[0, 1, 2, 3, 4, 5]).install();
        let signals = evaluate(&ctx).unwrap();
        let signal = find(&signals, "support.ticket-spike").unwrap();
        assert!(
            signal.reason.contains("weekly average of 2.5"),
            "{}",
            signal.reason
        );
    }

    #[test]
    fn tickets_older_than_5_weeks_are_not_in_the_baseline() {
        let ctx = ctx(100, 80);
        let old = tickets(History::new(ctx.now), &[35, 36, 40, 41, 42, 50]);
        tickets(old, &[0, 1, 2]).install();
        assert!(find(&evaluate(&ctx).unwrap(), "support.ticket-spike").is_some());
    }

    #[test]
    fn an_account_without_seats_gets_no_usage_signal() {
        assert!(quiet(0, 0).is_empty());
        assert!(quiet(0, 7).is_empty());
    }

    #[test]
    fn an_all_quiet_healthy_account_gets_no_signal() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .daily("active-users", 0, 30, 80.0)
            .daily("active-users", 30, 60, 78.0)
            .daily("logins", 0, 30, 40.0)
            .daily("logins", 30, 60, 42.0)
            .sample("support.ticket.opened", 3, 1.0)
            .sample("support.ticket.opened", 12, 1.0)
            .sample("support.ticket.opened", 25, 1.0)
            .install();
        assert!(evaluate(&ctx).unwrap().is_empty());
    }

    #[test]
    fn signals_come_in_a_fixed_order_and_repeat_exactly() {
        let history = |ctx: &Context<'_>| {
            let history = History::new(ctx.now)
                .daily("active-users", 0, 30, 130.0)
                .daily("active-users", 30, 60, 100.0)
                .daily("logins", 0, 30, 1.0)
                .daily("logins", 30, 60, 10.0);
            tickets(history, &[0, 1, 2, 3])
        };

        let none = ctx(100, 0);
        history(&none).install();
        let first = evaluate(&none).unwrap();
        assert_eq!(
            names(&first),
            vec![
                "usage.none",
                "usage.growth",
                "usage.login-decline",
                "support.ticket-spike"
            ]
        );
        assert_eq!(evaluate(&none).unwrap(), first);

        let low = ctx(100, 10);
        history(&low).install();
        assert_eq!(
            names(&evaluate(&low).unwrap()),
            vec![
                "usage.low",
                "usage.growth",
                "usage.login-decline",
                "support.ticket-spike"
            ]
        );
    }
}
