//! `health-score`: the multi-factor customer health score.
//!
//! | factor | weight | raw input | reading (0–100) |
//! |---|---|---|---|
//! | usage | 0.30 | active users / licensed seats | 80 % active or more reads 100, linear below |
//! | login-trend | 0.20 | logins in the last 30 days vs the 30 before, relative change | flat reads 75; +25 % reads 100; −50 % reads 0 |
//! | support-load | 0.15 | tickets opened in 30 days per 100 seats | none reads 100; 20 or more read 0 |
//! | sentiment | 0.20 | mean NPS rating (0–10) and sentiment (−1..1) over 90 days | rating × 10, sentiment (s + 1) × 50, averaged |
//! | payment-health | 0.15 | days the latest invoice is overdue | on time reads 100; 60 days or more read 0 |
//!
//! The value is the sum of the contributions (`weight × reading`), banded
//! Critical < 30, Declining 30–50, Stable 50–70, Optimal > 70 (Red below 50,
//! Yellow to 70, Green above). A factor without data reads a neutral 50 and
//! says so in its note.

use vigil_sdk::prelude::*;

/// Reading used for a factor that has no data yet.
const NEUTRAL: f64 = 50.0;

/// Computes the health score card of the account in `ctx`.
#[vigil_sdk::scorer(
    name = "health-score",
    description = "Multi-factor customer health score: usage, login trend, support load, sentiment, payment health.",
    fuel = 2_000_000,
    score = "health",
    factors = ["usage", "login-trend", "support-load", "sentiment", "payment-health"],
    windows = [
        ("logins", 30, 0),
        ("logins", 30, 30),
        ("support.ticket.opened", 30, 0),
        ("nps", 90, 0),
        ("sentiment", 90, 0),
        ("payment-days-overdue", 90, 0),
    ]
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let account = &ctx.account;
    if account.licensed_seats == 0 {
        return Err(PluginError::InvalidInput(format!(
            "account {} has no licensed seats",
            account.id
        )));
    }

    let usage = ratio(account.active_users, account.licensed_seats);
    let usage_reading = usage * 125.0;

    let recent_logins = window("logins", 30, 0);
    let earlier_logins = window("logins", 30, 30);
    let (login_change, login_reading, login_note) = login_trend(
        recent_logins.sum,
        earlier_logins.sum,
        earlier_logins.is_empty(),
    );

    let tickets = window("support.ticket.opened", 30, 0).count;
    let tickets_per_100_seats = f64::from(tickets) * 100.0 / f64::from(account.licensed_seats);
    let support_reading = 100.0 - tickets_per_100_seats * 5.0;

    let nps = window("nps", 90, 0).mean();
    let sentiment = window("sentiment", 90, 0).mean();
    let (sentiment_raw, sentiment_reading, sentiment_note) = sentiment_factor(nps, sentiment);

    let overdue_days = window("payment-days-overdue", 90, 0);
    let overdue = if overdue_days.is_empty() {
        0.0
    } else {
        overdue_days.last.max(0.0)
    };
    let payment_reading = 100.0 - overdue * 100.0 / 60.0;

    Ok(ScoreCardBuilder::new("health")
        .factor(
            "usage",
            0.30,
            usage,
            usage_reading,
            format!(
                "{} of {} licensed seats active",
                account.active_users, account.licensed_seats
            ),
        )
        .factor("login-trend", 0.20, login_change, login_reading, login_note)
        .factor(
            "support-load",
            0.15,
            tickets_per_100_seats,
            support_reading,
            format!("{tickets} tickets opened in 30 days"),
        )
        .factor(
            "sentiment",
            0.20,
            sentiment_raw,
            sentiment_reading,
            sentiment_note,
        )
        .factor(
            "payment-health",
            0.15,
            overdue,
            payment_reading,
            if overdue > 0.0 {
                format!("latest invoice {overdue} days overdue")
            } else {
                "invoices paid on time".to_string()
            },
        )
        .build(health_band))
}

/// The login-trend factor: relative change, reading and note.
fn login_trend(recent: f64, earlier: f64, no_earlier_history: bool) -> (f64, f64, String) {
    if no_earlier_history || earlier <= 0.0 {
        if recent > 0.0 {
            return (1.0, 100.0, "logins started in the last 30 days".to_string());
        }
        return (0.0, NEUTRAL, "no login history yet".to_string());
    }
    let change = recent / earlier - 1.0;
    let reading = if change >= 0.0 {
        75.0 + change * 100.0
    } else {
        75.0 + change * 150.0
    };
    let note = format!("logins {:+.0}% vs the previous 30 days", change * 100.0);
    (change, reading, note)
}

/// The sentiment factor from the mean NPS rating and mean sentiment.
fn sentiment_factor(nps: Option<f64>, sentiment: Option<f64>) -> (f64, f64, String) {
    match (nps, sentiment) {
        (Some(rating), Some(s)) => {
            let reading = (rating * 10.0 + (s + 1.0) * 50.0) / 2.0;
            (
                rating,
                reading,
                format!("NPS rating {rating:.1}, sentiment {s:+.2}"),
            )
        }
        (Some(rating), None) => (rating, rating * 10.0, format!("NPS rating {rating:.1}")),
        (None, Some(s)) => (s, (s + 1.0) * 50.0, format!("sentiment {s:+.2}")),
        (None, None) => (0.0, NEUTRAL, "no NPS or sentiment in 90 days".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    fn ctx(licensed: u32, active: u32) -> Context<'static> {
        ContextBuilder::new(AccountBuilder::new("acme").seats(licensed, active).build()).build()
    }

    fn factor<'a>(card: &'a ScoreCard, name: &str) -> &'a vigil_sdk::Factor {
        card.factors.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn factors_add_up_to_the_value_and_weights_to_one() {
        let ctx = ctx(100, 55);
        History::new(ctx.now)
            .daily("logins", 0, 30, 10.0)
            .daily("logins", 30, 60, 12.0)
            .sample("support.ticket.opened", 3, 1.0)
            .sample("nps", 20, 7.0)
            .install();
        let card = score(&ctx).unwrap();
        let sum: f64 = card.factors.iter().map(|f| f.contribution).sum();
        let weights: f64 = card.factors.iter().map(|f| f.weight).sum();
        assert_eq!(card.value, sum);
        assert!((weights - 1.0).abs() < 1e-12);
        assert_eq!(card.factors.len(), 5);
    }

    #[test]
    fn a_fully_engaged_paying_account_is_optimal_and_green() {
        let ctx = ctx(100, 95);
        History::new(ctx.now)
            .daily("logins", 0, 30, 20.0)
            .daily("logins", 30, 60, 16.0)
            .sample("nps", 10, 10.0)
            .install();
        let card = score(&ctx).unwrap();
        assert!(card.value > 70.0, "{}", card.value);
        assert_eq!(card.band, "optimal");
        assert_eq!(card.rag, Rag::Green);
    }

    #[test]
    fn an_abandoned_overdue_unhappy_account_is_critical_and_red() {
        let ctx = ctx(100, 5);
        History::new(ctx.now)
            .daily("logins", 0, 30, 1.0)
            .daily("logins", 30, 60, 10.0)
            .daily("support.ticket.opened", 0, 25, 1.0)
            .sample("nps", 5, 1.0)
            .sample("payment-days-overdue", 2, 75.0)
            .install();
        let card = score(&ctx).unwrap();
        assert!(card.value < 30.0, "{}", card.value);
        assert_eq!(card.band, "critical");
        assert_eq!(card.rag, Rag::Red);
    }

    #[test]
    fn usage_reads_active_over_licensed_seats() {
        let ctx = ctx(200, 50);
        History::new(ctx.now).install();
        let card = score(&ctx).unwrap();
        let usage = factor(&card, "usage");
        assert_eq!(usage.raw, 0.25);
        assert_eq!(usage.value, 31.25);
        assert_eq!(usage.contribution, 0.30 * 31.25);
    }

    #[test]
    fn a_login_decline_of_half_reads_zero_and_flat_reads_75() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .daily("logins", 0, 30, 5.0)
            .daily("logins", 30, 60, 10.0)
            .install();
        assert_eq!(factor(&score(&ctx).unwrap(), "login-trend").value, 0.0);
        History::new(ctx.now)
            .daily("logins", 0, 30, 10.0)
            .daily("logins", 30, 60, 10.0)
            .install();
        assert_eq!(factor(&score(&ctx).unwrap(), "login-trend").value, 75.0);
    }

    #[test]
    fn missing_data_reads_neutral_and_says_so() {
        let ctx = ctx(100, 80);
        History::new(ctx.now).install();
        let card = score(&ctx).unwrap();
        let sentiment = factor(&card, "sentiment");
        assert_eq!(sentiment.value, NEUTRAL);
        assert!(sentiment.note.contains("no NPS"));
        assert_eq!(factor(&card, "login-trend").value, NEUTRAL);
        assert_eq!(factor(&card, "payment-health").value, 100.0);
    }

    #[test]
    fn payment_sixty_days_overdue_reads_zero() {
        let ctx = ctx(100, 80);
        History::new(ctx.now)
            .sample("payment-days-overdue", 1, 60.0)
            .install();
        assert_eq!(factor(&score(&ctx).unwrap(), "payment-health").value, 0.0);
    }

    #[test]
    fn an_account_without_seats_is_invalid_input() {
        let ctx = ctx(0, 0);
        History::new(ctx.now).install();
        assert!(matches!(score(&ctx), Err(PluginError::InvalidInput(_))));
    }

    #[test]
    fn band_edges_follow_the_seed() {
        assert_eq!(health_band(29.99).0, "critical");
        assert_eq!(health_band(30.0).0, "declining");
        assert_eq!(health_band(50.0).0, "stable");
        assert_eq!(health_band(70.0).0, "stable");
        assert_eq!(health_band(70.01).0, "optimal");
    }
}
