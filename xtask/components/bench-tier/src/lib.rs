//! The bench rule set's condition (xtask/src/rules.rs): the standard
//! `tier-conditions` plugin's policy tags and applicability, with a fixed
//! reason.
use vigil_sdk::prelude::*;

const RENEWAL_WINDOW_MS: i64 = 90 * DAY_MS;

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
    let account = &ctx.account;
    let tier: &[&str] = match account.tier {
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
    let industry: &[&str] = match account.industry {
        Industry::Healthcare => &["hipaa", "fda", "security-audit", "training-certification"],
        Industry::FinancialServices => &["sox", "pci-dss", "audit-trail", "risk-assessment"],
        Industry::ECommerce => &["revenue-impact", "seasonality-planning"],
        _ => &[],
    };
    let contract: &[&str] = match account.renewal_date.map(|r| r - ctx.now) {
        Some(left) if left < 0 => &["renewal-overdue"],
        Some(left) if left <= RENEWAL_WINDOW_MS => &["renewal-window"],
        _ => &[],
    };
    let policy_tags = tier
        .iter()
        .chain(industry)
        .chain(contract)
        .map(|tag| Tag::Borrowed(tag))
        .collect();
    let applies = !(account.tier == Tier::SmallBusiness && signal.severity == Severity::Info);
    Ok(Verdict {
        applies,
        reason: if applies {
            "applies"
        } else {
            "left to self-service"
        }
        .to_string(),
        policy_tags,
    })
}
