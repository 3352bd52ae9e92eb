//! The bench rule set's condition (xtask/src/rules.rs), its rules in
//! `bench-rules`: the standard `tier-conditions` plugin's policy tags and
//! applicability, with a fixed reason.
use vigil_sdk::prelude::*;

/// Whether the signal applies, and the account's policy tags.
#[vigil_sdk::condition(
    name = "bench-tier",
    description = "Bench rule set: tier, industry and contract conditions.",
    fuel = 1_000_000,
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
pub fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    bench_rules::tier(ctx, signal)
}
