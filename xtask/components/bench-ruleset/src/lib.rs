//! The bench rule set (xtask/src/rules.rs) as one contract 0.7 ruleset:
//! the health score, the three triggers and the tier condition of the
//! five plugins `bench-health`, `bench-health-signals`,
//! `bench-usage-signals`, `bench-ticket-signals` and `bench-tier`, their
//! rules from `bench-rules`, in one plugin call an event instead of five
//! (and a check item for each signal): the same card, the same signals in
//! the same order, the same verdicts.
use vigil_sdk::prelude::*;

/// The rule set.
pub struct BenchRules;

#[vigil_sdk::ruleset(
    name = "bench-ruleset",
    description = "Bench rule set: the health score, three triggers and the tier condition in one call.",
    fuel = 4_000_000,
    score = "health",
    factors = ["usage", "login-trend", "support-load", "sentiment", "payment-health"],
    windows = [
        ("logins", 30, 0),
        ("logins", 30, 30),
        ("support.ticket.opened", 30, 0),
        ("nps", 90, 0),
        ("sentiment", 90, 0),
        ("payment-days-overdue", 90, 0),
        ("health", 30, 7),
        ("support.ticket.opened", 7, 0),
        ("support.ticket.opened", 28, 7),
    ],
    tags = [
        "monitoring-24x7",
        "dedicated-csm",
        "executive-business-review",
        "custom-metrics",
        "executive-notification",
        "business-hours-monitoring",
        "shared-csm",
        "quarterly-review",
        "standard-metrics",
        "automated-monitoring",
        "self-service-first",
        "biannual-check-in",
        "basic-metrics",
        "hipaa",
        "fda",
        "security-audit",
        "training-certification",
        "sox",
        "pci-dss",
        "audit-trail",
        "risk-assessment",
        "revenue-impact",
        "seasonality-planning",
        "renewal-overdue",
        "renewal-window",
    ]
)]
impl Ruleset for BenchRules {
    fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
        bench_rules::health_score(ctx)
    }

    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        let mut signals = Vec::new();
        bench_rules::health(ctx, &mut signals);
        bench_rules::usage(ctx, &mut signals);
        bench_rules::ticket(ctx, &mut signals);
        Ok(signals)
    }

    fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
        bench_rules::tier(ctx, signal)
    }
}
