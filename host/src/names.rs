//! The wire names of the contract's enums, as the API, the store and the
//! score listing's filters spell them (kebab-case, as in the WIT).

use crate::runtime::bindings::types::{
    Channel, EscalationLevel, Industry, IntentKind, Rag, Severity, Tier, Timing,
};

/// Every tier, by wire name.
pub const TIERS: &[(&str, Tier)] = &[
    ("enterprise", Tier::Enterprise),
    ("mid-market", Tier::MidMarket),
    ("small-business", Tier::SmallBusiness),
];

/// Every industry, by wire name.
pub const INDUSTRIES: &[(&str, Industry)] = &[
    ("healthcare", Industry::Healthcare),
    ("financial-services", Industry::FinancialServices),
    ("e-commerce", Industry::ECommerce),
    ("technology", Industry::Technology),
    ("manufacturing", Industry::Manufacturing),
    ("education", Industry::Education),
    ("other", Industry::Other),
];

/// The wire name of a tier.
pub fn tier_name(tier: Tier) -> &'static str {
    TIERS
        .iter()
        .find(|(_, t)| *t == tier)
        .map_or("small-business", |(name, _)| name)
}

/// The wire name of an industry.
pub fn industry_name(industry: Industry) -> &'static str {
    INDUSTRIES
        .iter()
        .find(|(_, i)| *i == industry)
        .map_or("other", |(name, _)| name)
}

/// The tier called `name`.
pub fn parse_tier(name: &str) -> Option<Tier> {
    TIERS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The industry called `name`.
pub fn parse_industry(name: &str) -> Option<Industry> {
    INDUSTRIES.iter().find(|(n, _)| *n == name).map(|(_, i)| *i)
}

/// The wire name of a timing bucket.
pub fn timing_name(timing: Timing) -> &'static str {
    match timing {
        Timing::Immediate => "immediate",
        Timing::ShortTerm => "short-term",
        Timing::MediumTerm => "medium-term",
        Timing::LongTerm => "long-term",
    }
}

/// Every timing bucket, soonest first.
pub const TIMINGS: &[Timing] = &[
    Timing::Immediate,
    Timing::ShortTerm,
    Timing::MediumTerm,
    Timing::LongTerm,
];

/// The timing bucket called `name`.
pub fn parse_timing(name: &str) -> Option<Timing> {
    TIMINGS.iter().copied().find(|t| timing_name(*t) == name)
}

/// The wire name of an intent's kind.
pub fn intent_kind_name(kind: &IntentKind) -> &'static str {
    match kind {
        IntentKind::Notify(_) => "notify",
        IntentKind::Task(_) => "task",
        IntentKind::Escalate(_) => "escalate",
        IntentKind::Schedule(_) => "schedule",
        IntentKind::Webhook(_) => "webhook",
        IntentKind::Freeze(_) => "freeze",
    }
}

/// The wire name of a channel.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Chat => "chat",
        Channel::Sms => "sms",
        Channel::InApp => "in-app",
    }
}

/// Every notification channel.
pub const CHANNELS: &[Channel] = &[Channel::Email, Channel::Chat, Channel::Sms, Channel::InApp];

/// The channel called `name`.
pub fn parse_channel(name: &str) -> Option<Channel> {
    CHANNELS.iter().copied().find(|c| channel_name(*c) == name)
}

/// The wire name of an escalation level.
pub fn level_name(level: EscalationLevel) -> &'static str {
    match level {
        EscalationLevel::L1 => "l1",
        EscalationLevel::L2 => "l2",
        EscalationLevel::L3 => "l3",
    }
}

/// Every escalation level, lowest first.
pub const LEVELS: &[EscalationLevel] = &[
    EscalationLevel::L1,
    EscalationLevel::L2,
    EscalationLevel::L3,
];

/// The escalation level called `name`.
pub fn parse_level(name: &str) -> Option<EscalationLevel> {
    LEVELS.iter().copied().find(|l| level_name(*l) == name)
}

/// The wire name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// The wire name of a red/yellow/green status.
pub fn rag_name(rag: Rag) -> &'static str {
    match rag {
        Rag::Red => "red",
        Rag::Yellow => "yellow",
        Rag::Green => "green",
    }
}
