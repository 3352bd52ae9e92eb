//! `tier-conditions`: tier, industry and contract rules into verdicts.
//!
//! | rule | when | policy tags |
//! |---|---|---|
//! | enterprise | tier Enterprise | `monitoring-24x7`, `dedicated-csm`, `executive-business-review`, `custom-metrics`, `executive-notification` |
//! | mid-market | tier Mid-Market | `business-hours-monitoring`, `shared-csm`, `quarterly-review`, `standard-metrics` |
//! | small-business | tier Small Business | `automated-monitoring`, `self-service-first`, `biannual-check-in`, `basic-metrics` |
//! | healthcare | industry Healthcare | `hipaa`, `fda`, `security-audit`, `training-certification`, `patient-data-protection` |
//! | financial-services | industry Financial services | `sox`, `pci-dss`, `audit-trail`, `risk-assessment`, `data-governance` |
//! | e-commerce | industry E-commerce | `revenue-impact`, `seasonality-planning`, `customer-lifetime-value`, `shopping-behavior` |
//! | renewal-window | renewal date from now to 90 days ahead | `renewal-window` |
//! | renewal-overdue | renewal date before now | `renewal-overdue` |
//!
//! Tags come in that order: tier, then industry, then contract. Every signal
//! applies, whatever its name, except an `Info` signal on a Small Business
//! account: that one is left to automated self-service. The reason names the
//! tier and its key policy, then the compliance regime and the renewal, if
//! any.

use vigil_sdk::Timestamp;
use vigil_sdk::prelude::*;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// How far ahead a renewal date opens the renewal window.
const RENEWAL_WINDOW_DAYS: i64 = 90;

/// The tags of the enterprise tier.
const ENTERPRISE_TAGS: &[&str] = &[
    "monitoring-24x7",
    "dedicated-csm",
    "executive-business-review",
    "custom-metrics",
    "executive-notification",
];

/// The tags of the mid-market tier.
const MID_MARKET_TAGS: &[&str] = &[
    "business-hours-monitoring",
    "shared-csm",
    "quarterly-review",
    "standard-metrics",
];

/// The tags of the small-business tier.
const SMALL_BUSINESS_TAGS: &[&str] = &[
    "automated-monitoring",
    "self-service-first",
    "biannual-check-in",
    "basic-metrics",
];

/// The tags of healthcare accounts.
const HEALTHCARE_TAGS: &[&str] = &[
    "hipaa",
    "fda",
    "security-audit",
    "training-certification",
    "patient-data-protection",
];

/// The tags of financial-services accounts.
const FINANCIAL_SERVICES_TAGS: &[&str] = &[
    "sox",
    "pci-dss",
    "audit-trail",
    "risk-assessment",
    "data-governance",
];

/// The tags of e-commerce accounts.
const E_COMMERCE_TAGS: &[&str] = &[
    "revenue-impact",
    "seasonality-planning",
    "customer-lifetime-value",
    "shopping-behavior",
];

/// Decides whether `signal` applies to the account in `ctx`, and tags the
/// verdict with the account's tier, industry and contract policies.
#[vigil_sdk::condition(
    name = "tier-conditions",
    description = "Tier, industry and contract conditions: policy tags for Enterprise, Mid-Market and Small Business accounts, compliance tags, renewal windows.",
    fuel = 1_000_000,
    // Every tag the rules below can give, in the table's order.
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
        "patient-data-protection",
        "sox",
        "pci-dss",
        "audit-trail",
        "risk-assessment",
        "data-governance",
        "revenue-impact",
        "seasonality-planning",
        "customer-lifetime-value",
        "shopping-behavior",
        "renewal-window",
        "renewal-overdue",
    ]
)]
pub fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    let account = &ctx.account;
    let (tier_name, tier_tags, tier_policy) = tier_policy(account.tier);
    let (industry_tags, compliance) = industry_policy(account.industry);
    let contract = contract_policy(account.renewal_date, ctx.now);

    let mut policy_tags: Vec<Tag> = tier_tags
        .iter()
        .chain(industry_tags)
        .map(|tag| Tag::Borrowed(tag))
        .collect();
    let mut reason = format!("{tier_name} account: {tier_policy}");
    if let Some(compliance) = compliance {
        reason.push_str(&format!("; {compliance}"));
    }
    if let Some((tag, note)) = contract {
        policy_tags.push(Tag::Borrowed(tag));
        reason.push_str(&format!("; {note}"));
    }

    let applies = !(account.tier == Tier::SmallBusiness && signal.severity == Severity::Info);
    if !applies {
        reason = format!(
            "{tier_name} account: info signal {} left to automated self-service",
            signal.name
        );
    }

    Ok(Verdict {
        applies,
        reason,
        policy_tags,
    })
}

/// The tier's name, tags and key policy in words.
fn tier_policy(tier: Tier) -> (&'static str, &'static [&'static str], &'static str) {
    match tier {
        Tier::Enterprise => (
            "enterprise",
            ENTERPRISE_TAGS,
            "24/7 monitoring, dedicated CSM, executive notification",
        ),
        Tier::MidMarket => (
            "mid-market",
            MID_MARKET_TAGS,
            "business-hours monitoring, shared CSM, quarterly reviews",
        ),
        Tier::SmallBusiness => (
            "small-business",
            SMALL_BUSINESS_TAGS,
            "automated monitoring, self-service first, bi-annual check-ins",
        ),
    }
}

/// The industry's tags and its compliance regime in words, if any.
fn industry_policy(industry: Industry) -> (&'static [&'static str], Option<&'static str>) {
    match industry {
        Industry::Healthcare => (
            HEALTHCARE_TAGS,
            Some(
                "healthcare compliance: HIPAA, FDA, security audits, training certification, \
                 patient data protection",
            ),
        ),
        Industry::FinancialServices => (
            FINANCIAL_SERVICES_TAGS,
            Some(
                "financial compliance: SOX, PCI-DSS, audit trail, risk assessment, data governance",
            ),
        ),
        Industry::ECommerce => (
            E_COMMERCE_TAGS,
            Some(
                "e-commerce: revenue impact, seasonality planning, customer lifetime value, \
                 shopping behavior",
            ),
        ),
        Industry::Technology | Industry::Manufacturing | Industry::Education | Industry::Other => {
            (&[], None)
        }
    }
}

/// The contract tag and its note: `renewal-window` when the renewal date is
/// at most 90 days ahead, `renewal-overdue` when it has passed.
fn contract_policy(
    renewal_date: Option<Timestamp>,
    now: Timestamp,
) -> Option<(&'static str, String)> {
    let renewal = renewal_date?;
    if renewal < now {
        let days = (now - renewal) / DAY_MS;
        let note = match days {
            0 => "renewal date passed today".to_string(),
            1 => "renewal 1 day overdue".to_string(),
            n => format!("renewal {n} days overdue"),
        };
        return Some(("renewal-overdue", note));
    }
    if renewal - now <= RENEWAL_WINDOW_DAYS * DAY_MS {
        let days = (renewal - now) / DAY_MS;
        let note = match days {
            0 => "renews today".to_string(),
            1 => "renews in 1 day".to_string(),
            n => format!("renews in {n} days"),
        };
        return Some(("renewal-window", note));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History, days};

    fn account(tier: Tier, industry: Industry) -> AccountBuilder {
        AccountBuilder::new("acme").tier(tier).industry(industry)
    }

    fn signal(name: &str, severity: Severity) -> Signal {
        Signal {
            name: name.to_string(),
            severity,
            reason: "test".to_string(),
            dedup_key: format!("acme:{name}"),
            cooldown_secs: 86_400,
        }
    }

    fn verdict(account: AccountBuilder, severity: Severity) -> Verdict {
        let ctx = ContextBuilder::new(account.build()).build();
        History::new(ctx.now).install();
        check(&ctx, &signal("health.critical", severity)).unwrap()
    }

    fn tags(verdict: &Verdict) -> Vec<&str> {
        verdict.policy_tags.iter().map(|tag| tag.as_ref()).collect()
    }

    fn renewing_in(offset_ms: i64) -> Verdict {
        let now = vigil_sdk::testing::DEFAULT_NOW;
        verdict(
            account(Tier::MidMarket, Industry::Technology).renews_at(now + offset_ms),
            Severity::High,
        )
    }

    #[test]
    fn enterprise_accounts_get_24x7_monitoring_a_dedicated_csm_and_executive_notification() {
        let v = verdict(
            account(Tier::Enterprise, Industry::Technology),
            Severity::High,
        );
        assert!(v.applies);
        assert_eq!(
            tags(&v),
            [
                "monitoring-24x7",
                "dedicated-csm",
                "executive-business-review",
                "custom-metrics",
                "executive-notification"
            ]
        );
        assert_eq!(
            v.reason,
            "enterprise account: 24/7 monitoring, dedicated CSM, executive notification"
        );
    }

    #[test]
    fn mid_market_accounts_get_business_hours_monitoring_and_a_shared_csm() {
        let v = verdict(
            account(Tier::MidMarket, Industry::Technology),
            Severity::High,
        );
        assert!(v.applies);
        assert_eq!(
            tags(&v),
            [
                "business-hours-monitoring",
                "shared-csm",
                "quarterly-review",
                "standard-metrics"
            ]
        );
        assert!(
            v.reason
                .starts_with("mid-market account: business-hours monitoring, shared CSM")
        );
    }

    #[test]
    fn small_business_accounts_get_automated_monitoring_and_self_service_first() {
        let v = verdict(
            account(Tier::SmallBusiness, Industry::Technology),
            Severity::High,
        );
        assert!(v.applies);
        assert_eq!(
            tags(&v),
            [
                "automated-monitoring",
                "self-service-first",
                "biannual-check-in",
                "basic-metrics"
            ]
        );
        assert!(
            v.reason
                .starts_with("small-business account: automated monitoring, self-service first")
        );
    }

    #[test]
    fn executive_notification_is_only_for_enterprise() {
        for tier in [Tier::Enterprise, Tier::MidMarket, Tier::SmallBusiness] {
            let v = verdict(account(tier, Industry::Healthcare), Severity::Critical);
            let exec = v.policy_tags.iter().any(|t| t == "executive-notification");
            assert_eq!(exec, tier == Tier::Enterprise, "{tier:?}");
        }
    }

    #[test]
    fn healthcare_adds_hipaa_fda_security_audit_training_certification_and_patient_data_protection()
    {
        let v = verdict(
            account(Tier::MidMarket, Industry::Healthcare),
            Severity::High,
        );
        assert_eq!(
            tags(&v)[4..],
            [
                "hipaa",
                "fda",
                "security-audit",
                "training-certification",
                "patient-data-protection"
            ]
        );
        assert!(v.reason.contains("HIPAA, FDA"), "{}", v.reason);
    }

    #[test]
    fn financial_services_adds_sox_pci_dss_audit_trail_risk_assessment_and_data_governance() {
        let v = verdict(
            account(Tier::MidMarket, Industry::FinancialServices),
            Severity::High,
        );
        assert_eq!(
            tags(&v)[4..],
            [
                "sox",
                "pci-dss",
                "audit-trail",
                "risk-assessment",
                "data-governance"
            ]
        );
        assert!(v.reason.contains("SOX, PCI-DSS"), "{}", v.reason);
    }

    #[test]
    fn e_commerce_adds_revenue_impact_seasonality_planning_lifetime_value_and_shopping_behavior() {
        let v = verdict(
            account(Tier::MidMarket, Industry::ECommerce),
            Severity::High,
        );
        assert_eq!(
            tags(&v)[4..],
            [
                "revenue-impact",
                "seasonality-planning",
                "customer-lifetime-value",
                "shopping-behavior"
            ]
        );
    }

    #[test]
    fn other_industries_add_no_tags() {
        for industry in [
            Industry::Technology,
            Industry::Manufacturing,
            Industry::Education,
            Industry::Other,
        ] {
            let v = verdict(account(Tier::MidMarket, industry), Severity::High);
            assert_eq!(v.policy_tags.len(), 4, "{industry:?}");
        }
    }

    #[test]
    fn a_renewal_90_days_ahead_is_in_the_renewal_window() {
        let v = renewing_in(days(90));
        assert_eq!(v.policy_tags.last().unwrap(), "renewal-window");
        assert!(v.reason.ends_with("renews in 90 days"), "{}", v.reason);
    }

    #[test]
    fn a_renewal_today_is_in_the_renewal_window() {
        assert_eq!(renewing_in(0).policy_tags.last().unwrap(), "renewal-window");
    }

    #[test]
    fn a_renewal_91_days_ahead_is_not_in_the_renewal_window() {
        let v = renewing_in(days(91));
        assert_eq!(v.policy_tags.len(), 4);
        assert!(!v.reason.contains("renew"), "{}", v.reason);
    }

    #[test]
    fn a_renewal_a_moment_past_90_days_is_not_in_the_renewal_window() {
        assert_eq!(renewing_in(days(90) + 1).policy_tags.len(), 4);
    }

    #[test]
    fn a_past_renewal_date_is_overdue() {
        let v = renewing_in(-days(3));
        assert_eq!(v.policy_tags.last().unwrap(), "renewal-overdue");
        assert!(!v.policy_tags.iter().any(|t| t == "renewal-window"));
        assert!(v.reason.ends_with("renewal 3 days overdue"), "{}", v.reason);
    }

    #[test]
    fn an_account_without_a_renewal_date_has_no_contract_tag() {
        let v = verdict(account(Tier::Enterprise, Industry::Other), Severity::High);
        assert!(!v.policy_tags.iter().any(|t| t.starts_with("renewal")));
    }

    #[test]
    fn tags_come_tier_first_then_industry_then_contract() {
        let now = vigil_sdk::testing::DEFAULT_NOW;
        let v = verdict(
            account(Tier::Enterprise, Industry::ECommerce).renews_at(now + days(30)),
            Severity::High,
        );
        assert_eq!(
            tags(&v),
            [
                "monitoring-24x7",
                "dedicated-csm",
                "executive-business-review",
                "custom-metrics",
                "executive-notification",
                "revenue-impact",
                "seasonality-planning",
                "customer-lifetime-value",
                "shopping-behavior",
                "renewal-window"
            ]
        );
        assert_eq!(
            v.reason,
            "enterprise account: 24/7 monitoring, dedicated CSM, executive notification; \
             e-commerce: revenue impact, seasonality planning, customer lifetime value, \
             shopping behavior; renews in 30 days"
        );
    }

    #[test]
    fn a_small_business_info_signal_is_left_to_self_service() {
        let v = verdict(
            account(Tier::SmallBusiness, Industry::Technology),
            Severity::Info,
        );
        assert!(!v.applies);
        assert!(
            v.reason.contains("left to automated self-service"),
            "{}",
            v.reason
        );
        assert!(v.policy_tags.iter().any(|t| t == "self-service-first"));
    }

    #[test]
    fn a_small_business_high_signal_applies() {
        let v = verdict(
            account(Tier::SmallBusiness, Industry::Technology),
            Severity::High,
        );
        assert!(v.applies);
    }

    #[test]
    fn info_signals_apply_to_larger_tiers() {
        for tier in [Tier::Enterprise, Tier::MidMarket] {
            assert!(verdict(account(tier, Industry::Other), Severity::Info).applies);
        }
    }

    #[test]
    fn an_unknown_signal_name_is_judged_by_tier_and_severity_alone() {
        let ctx =
            ContextBuilder::new(account(Tier::Enterprise, Industry::Healthcare).build()).build();
        History::new(ctx.now).install();
        let known = check(&ctx, &signal("health.critical", Severity::Medium)).unwrap();
        let unknown = check(&ctx, &signal("hipaa.breach-suspected", Severity::Medium)).unwrap();
        assert_eq!(known, unknown);
    }

    #[test]
    fn the_same_input_gives_the_same_verdict() {
        let now = vigil_sdk::testing::DEFAULT_NOW;
        let ctx = ContextBuilder::new(
            account(Tier::Enterprise, Industry::FinancialServices)
                .renews_at(now + days(10))
                .build(),
        )
        .build();
        History::new(ctx.now).install();
        let s = signal("usage.none", Severity::Critical);
        assert_eq!(check(&ctx, &s).unwrap(), check(&ctx, &s).unwrap());
    }
}
