//! `lead-score`: how ready a lead is for sales, from engagement, recency and fit.
//!
//! | factor | weight | raw input | reading (0–100) |
//! |---|---|---|---|
//! | engagement | 0.50 | engagement points over the last 30 days: email opens × 2, site visits × 3, content downloads × 8, demo requests × 30 | the points, capped at 100 |
//! | recency | 0.20 | days bucket of the latest `lead.engagement` event: 7, 30, 90, or 0 when none in 90 days | within 7 days reads 100, 30 days 60, 90 days 20, older or never 0 |
//! | fit | 0.30 | the fit reading | 0.6 × tier (Enterprise 100, Mid-Market 75, Small Business 45) + 0.4 × industry (technology, financial services, healthcare 100; e-commerce 80; others 60) |
//!
//! Engagement counts come from the numeric fields of `lead.engagement` event
//! payloads, which the host records with dashes for underscores:
//! `{"email_opens": 3, "demo_requests": 1}` records `email-opens` and
//! `demo-requests`. The value is the sum of the contributions
//! (`weight × reading`), banded Hot from 70, Warm from 40, Cold below (Green,
//! Yellow, Red).

use vigil_sdk::prelude::*;

/// The event whose samples date a lead's latest engagement.
const ENGAGEMENT_EVENT: &str = "lead.engagement";

/// Engagement metrics and the points each sample is worth.
const ENGAGEMENT_POINTS: &[(&str, f64)] = &[
    ("email-opens", 2.0),
    ("site-visits", 3.0),
    ("content-downloads", 8.0),
    ("demo-requests", 30.0),
];

/// Computes the lead score card of the account in `ctx`.
#[vigil_sdk::scorer(
    name = "lead-score",
    description = "Lead score from engagement, recency and fit, banded hot, warm and cold.",
    subscribes = ["lead.*"],
    fuel = 1_000_000,
    score = "lead",
    bands = ["hot", "warm", "cold"],
    factors = ["engagement", "recency", "fit"],
    windows = [
        ("email-opens", 30, 0),
        ("site-visits", 30, 0),
        ("content-downloads", 30, 0),
        ("demo-requests", 30, 0),
        ("lead.engagement", 7, 0),
        ("lead.engagement", 30, 0),
        ("lead.engagement", 90, 0),
    ]
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let (points, engagement_note) = engagement();
    let (recency_days, recency_reading, recency_note) = recency();
    let (fit_reading, fit_note) = fit(&ctx.account);

    Ok(ScoreCardBuilder::new("lead")
        .factor(
            "engagement",
            0.50,
            points,
            points.clamp(0.0, 100.0),
            engagement_note,
        )
        .factor("recency", 0.20, recency_days, recency_reading, recency_note)
        .factor("fit", 0.30, fit_reading, fit_reading, fit_note)
        .build(lead_band))
}

/// Engagement points over the last 30 days and a note listing the counts.
fn engagement() -> (f64, String) {
    let mut points = 0.0;
    let mut parts = Vec::with_capacity(ENGAGEMENT_POINTS.len());
    for (metric, worth) in ENGAGEMENT_POINTS {
        let count = window(metric, 30, 0).sum;
        points += count * worth;
        parts.push(format!("{count} {}", metric.replace('-', " ")));
    }
    let note = format!("{} in 30 days: {points} points", parts.join(", "));
    (points, note)
}

/// The recency bucket in days, its reading and a note.
fn recency() -> (f64, f64, String) {
    for (days, reading) in [(7, 100.0), (30, 60.0), (90, 20.0)] {
        if !window(ENGAGEMENT_EVENT, days, 0).is_empty() {
            return (
                f64::from(days),
                reading,
                format!("engaged within the last {days} days"),
            );
        }
    }
    (0.0, 0.0, "no engagement in 90 days".to_string())
}

/// The fit reading from tier and industry, and a note.
fn fit(account: &Account<'_>) -> (f64, String) {
    let (tier, tier_reading) = match account.tier {
        Tier::Enterprise => ("enterprise", 100.0),
        Tier::MidMarket => ("mid-market", 75.0),
        Tier::SmallBusiness => ("small-business", 45.0),
    };
    let (industry, industry_reading) = match account.industry {
        Industry::Technology => ("technology", 100.0),
        Industry::FinancialServices => ("financial-services", 100.0),
        Industry::Healthcare => ("healthcare", 100.0),
        Industry::ECommerce => ("e-commerce", 80.0),
        Industry::Manufacturing => ("manufacturing", 60.0),
        Industry::Education => ("education", 60.0),
        Industry::Other => ("other", 60.0),
    };
    let reading = 0.6 * tier_reading + 0.4 * industry_reading;
    let note =
        format!("{tier} tier reads {tier_reading}, {industry} industry reads {industry_reading}");
    (reading, note)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    fn ctx(tier: Tier, industry: Industry) -> Context<'static> {
        ContextBuilder::new(
            AccountBuilder::new("lead-1")
                .tier(tier)
                .industry(industry)
                .build(),
        )
        .event(ENGAGEMENT_EVENT, r#"{"site_visits": 1}"#)
        .build()
    }

    fn factor<'a>(card: &'a ScoreCard, name: &str) -> &'a vigil_sdk::Factor {
        card.factors.iter().find(|f| f.name == name).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn an_engaged_enterprise_technology_lead_is_hot() {
        let ctx = ctx(Tier::Enterprise, Industry::Technology);
        History::new(ctx.now)
            .sample(ENGAGEMENT_EVENT, 1, 1.0)
            .sample("demo-requests", 1, 1.0)
            .sample("site-visits", 1, 10.0)
            .sample("content-downloads", 10, 2.0)
            .install();
        let card = score(&ctx).unwrap();
        assert_eq!(card.name, "lead");
        // 0.5 × (30 + 30 + 16) + 0.2 × 100 + 0.3 × 100
        assert!(close(card.value, 88.0), "{}", card.value);
        assert_eq!(card.band, "hot");
        assert_eq!(card.rag, Rag::Green);
    }

    #[test]
    fn a_mid_market_lead_that_read_some_emails_three_weeks_ago_is_warm() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        History::new(ctx.now)
            .sample(ENGAGEMENT_EVENT, 20, 1.0)
            .sample("email-opens", 20, 5.0)
            .sample("site-visits", 20, 10.0)
            .install();
        let card = score(&ctx).unwrap();
        // 0.5 × 40 + 0.2 × 60 + 0.3 × (0.6 × 75 + 0.4 × 100) = 20 + 12 + 25.5
        assert!(close(card.value, 57.5), "{}", card.value);
        assert_eq!(card.band, "warm");
        assert_eq!(card.rag, Rag::Yellow);
    }

    #[test]
    fn a_small_business_lead_without_engagement_is_cold() {
        let ctx = ctx(Tier::SmallBusiness, Industry::Other);
        History::new(ctx.now).install();
        let card = score(&ctx).unwrap();
        // 0.3 × (0.6 × 45 + 0.4 × 60) = 0.3 × 51
        assert!(close(card.value, 15.3), "{}", card.value);
        assert_eq!(card.band, "cold");
        assert_eq!(card.rag, Rag::Red);
        assert_eq!(factor(&card, "recency").note, "no engagement in 90 days");
    }

    #[test]
    fn contributions_add_up_to_the_value_and_weights_to_one() {
        let ctx = ctx(Tier::MidMarket, Industry::ECommerce);
        History::new(ctx.now)
            .sample(ENGAGEMENT_EVENT, 12, 1.0)
            .sample("email-opens", 12, 7.0)
            .sample("content-downloads", 3, 1.0)
            .install();
        let card = score(&ctx).unwrap();
        let sum: f64 = card.factors.iter().map(|f| f.contribution).sum();
        let weights: f64 = card.factors.iter().map(|f| f.weight).sum();
        assert_eq!(card.value, sum);
        assert!((weights - 1.0).abs() < 1e-12);
        let names: Vec<&str> = card.factors.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["engagement", "recency", "fit"]);
        for f in &card.factors {
            assert_eq!(f.contribution, f.weight * f.value, "{}", f.name);
        }
    }

    #[test]
    fn one_demo_request_outweighs_ten_email_opens() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        History::new(ctx.now)
            .sample("demo-requests", 2, 1.0)
            .install();
        let demo = score(&ctx).unwrap();
        History::new(ctx.now)
            .sample("email-opens", 2, 10.0)
            .install();
        let opens = score(&ctx).unwrap();
        assert_eq!(factor(&demo, "engagement").raw, 30.0);
        assert_eq!(factor(&opens, "engagement").raw, 20.0);
        assert!(demo.value > opens.value);
    }

    #[test]
    fn engagement_points_weigh_each_metric_and_cap_the_reading_at_100() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        History::new(ctx.now)
            .sample("email-opens", 1, 4.0)
            .sample("site-visits", 2, 5.0)
            .sample("content-downloads", 3, 3.0)
            .sample("demo-requests", 4, 2.0)
            .install();
        let card = score(&ctx).unwrap();
        let engagement = factor(&card, "engagement");
        // 4 × 2 + 5 × 3 + 3 × 8 + 2 × 30
        assert_eq!(engagement.raw, 107.0);
        assert_eq!(engagement.value, 100.0);
        assert!(
            engagement.note.contains("2 demo requests"),
            "{}",
            engagement.note
        );
    }

    #[test]
    fn engagement_older_than_30_days_does_not_count() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        History::new(ctx.now)
            .sample("demo-requests", 31, 1.0)
            .sample("site-visits", 29, 1.0)
            .install();
        assert_eq!(factor(&score(&ctx).unwrap(), "engagement").raw, 3.0);
    }

    #[test]
    fn recency_reads_by_bucket_of_the_latest_engagement() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        for (days_ago, raw, reading) in [
            (0, 7.0, 100.0),
            (6, 7.0, 100.0),
            (8, 30.0, 60.0),
            (29, 30.0, 60.0),
            (31, 90.0, 20.0),
            (89, 90.0, 20.0),
            (91, 0.0, 0.0),
        ] {
            History::new(ctx.now)
                .sample(ENGAGEMENT_EVENT, days_ago, 1.0)
                .install();
            let card = score(&ctx).unwrap();
            let recency = factor(&card, "recency");
            assert_eq!(
                (recency.raw, recency.value),
                (raw, reading),
                "{days_ago} days ago"
            );
        }
    }

    #[test]
    fn the_latest_engagement_sets_the_recency_bucket() {
        let ctx = ctx(Tier::MidMarket, Industry::Technology);
        History::new(ctx.now)
            .sample(ENGAGEMENT_EVENT, 60, 1.0)
            .sample(ENGAGEMENT_EVENT, 3, 1.0)
            .install();
        assert_eq!(factor(&score(&ctx).unwrap(), "recency").value, 100.0);
    }

    #[test]
    fn fit_weighs_tier_and_industry() {
        for (tier, industry, reading) in [
            (Tier::Enterprise, Industry::Healthcare, 100.0),
            (Tier::Enterprise, Industry::FinancialServices, 100.0),
            (Tier::MidMarket, Industry::Technology, 85.0),
            (Tier::SmallBusiness, Industry::ECommerce, 59.0),
            (Tier::Enterprise, Industry::Manufacturing, 84.0),
            (Tier::SmallBusiness, Industry::Education, 51.0),
        ] {
            let ctx = ctx(tier, industry);
            History::new(ctx.now).install();
            let fit = factor(&score(&ctx).unwrap(), "fit").value;
            assert!(close(fit, reading), "{tier:?} {industry:?}: {fit}");
        }
    }

    // The seed names the bands (hot, warm, cold "based on score
    // thresholds") but gives no thresholds: 70 and 40 are vigil's.
    #[test]
    fn band_edges_are_hot_from_70_and_warm_from_40() {
        assert_eq!(lead_band(70.0).0, "hot");
        assert_eq!(lead_band(69.99).0, "warm");
        assert_eq!(lead_band(40.0).0, "warm");
        assert_eq!(lead_band(39.99).0, "cold");
    }
}
