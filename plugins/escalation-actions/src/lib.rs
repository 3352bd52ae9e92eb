//! `escalation-actions`: signals into notifications, tasks, escalations,
//! schedules, webhooks and freezes, by the action timing rules and the
//! escalation matrix.
//!
//! | signal | intents, in order |
//! |---|---|
//! | `health.critical` | escalate immediate L2 (L3 with `executive-notification`); task immediate "Deploy intervention playbook" → csm; with `executive-notification`: notify immediate email executive-sponsor `critical-health-executive`; freeze immediate |
//! | `health.declining` | with `self-service-first`: notify short-term email customer-admin `self-service-resources`, escalate short-term L1; otherwise escalate short-term L2, schedule short-term `check-in`, notify short-term email customer-admin `personalized-outreach`, task medium-term "Success plan review" → csm, task medium-term "Product adoption audit" → csm |
//! | `health.below-60` | notify immediate chat csm `high-priority-alert`; task short-term "Start retention workflow" → csm |
//! | `health.trend-down` | escalate short-term L2 (L1 with `self-service-first`); task short-term "Proactive intervention" → csm |
//! | `health.stable` | schedule long-term `qbr`; task medium-term "Identify expansion opportunities" → csm; notify medium-term email customer-admin `satisfaction-survey` |
//! | `health.optimal` | notify medium-term email customer-admin `advocate-program`; task long-term "Develop case study" → marketing; notify medium-term email customer-admin `referral-program` |
//! | `expansion.ready` | notify short-term chat sales `expansion-handoff`; task short-term "Sales handoff: expansion opportunity" → sales; webhook short-term `crm` |
//! | `usage.none` | escalate immediate L2 (L3 with `executive-notification`); notify immediate email account-owner `stakeholder-escalation`; task short-term "Contract renewal risk assessment" → csm; task medium-term "Onboarding process review" → csm |
//! | `usage.low` | schedule short-term `training-session`; notify medium-term in-app customer-users `feature-adoption-campaign`; task medium-term "Identify a champion" → csm (not with `self-service-first`) |
//! | `usage.growth` | notify short-term chat csm `capacity-planning`; task medium-term "Score expansion opportunity" → sales; task long-term "Document success story" → marketing |
//! | `usage.login-decline` | escalate short-term L2 (L1 with `self-service-first`); notify short-term email customer-admin `re-engagement` |
//! | `support.ticket-spike` | notify immediate chat support `ticket-spike`; task short-term "Review support ticket spike" → support |
//! | any other signal | by severity: critical escalates immediate L2, high short-term L2, medium medium-term L1; low and info plan nothing |
//!
//! Timing buckets: immediate within 1 hour, short-term 24 hours, medium-term
//! 7 days, long-term 4 weeks; tasks, escalations and schedules fall due at
//! the end of their bucket. Escalation levels: L1 automated, L2 CSM-led, L3
//! leadership. A verdict that does not apply plans nothing. The monitoring
//! tags (`monitoring-24x7`, `business-hours-monitoring`) change no intent:
//! when an intent is carried out is the host's scheduling concern.

use vigil_sdk::prelude::*;

/// The verdict tag that brings leadership and the executive sponsor in.
const EXECUTIVE_NOTIFICATION: &str = "executive-notification";

/// The verdict tag that keeps escalations automated.
const SELF_SERVICE_FIRST: &str = "self-service-first";

/// Plans the intents for `signal` on the account in `ctx`, given the
/// condition's `verdict`.
#[vigil_sdk::action(
    name = "escalation-actions",
    description = "Escalation actions: health, usage, expansion and support signals into notifications, tasks, escalations and schedules, by the escalation matrix.",
    fuel = 1_000_000
)]
pub fn plan(
    ctx: &Context<'_>,
    signal: &Signal,
    verdict: &Verdict,
) -> Result<Vec<Intent>, PluginError> {
    if !verdict.applies {
        return Ok(Vec::new());
    }
    let exec = has_tag(verdict, EXECUTIVE_NOTIFICATION);
    let selfserve = has_tag(verdict, SELF_SERVICE_FIRST);
    let senior = if exec {
        EscalationLevel::L3
    } else {
        EscalationLevel::L2
    };
    let csm_led = if selfserve {
        EscalationLevel::L1
    } else {
        EscalationLevel::L2
    };
    let plan = IntentBuilder::new(ctx, signal);

    let intents = match signal.name.as_str() {
        "health.critical" => explain(
            plan.escalate(Timing::Immediate, senior)
                .task(Timing::Immediate, "Deploy intervention playbook", "csm")
                .when(exec, |p| {
                    p.notify(
                        Timing::Immediate,
                        Channel::Email,
                        "executive-sponsor",
                        "critical-health-executive",
                    )
                })
                .freeze(Timing::Immediate)
                .build(),
            if exec {
                "immediate escalation to leadership"
            } else {
                "immediate escalation to senior CSM"
            },
        ),
        "health.declining" if selfserve => explain(
            plan.notify(
                Timing::ShortTerm,
                Channel::Email,
                "customer-admin",
                "self-service-resources",
            )
            .escalate(Timing::ShortTerm, EscalationLevel::L1)
            .build(),
            "self-service resources for declining health",
        ),
        "health.declining" => explain(
            plan.escalate(Timing::ShortTerm, EscalationLevel::L2)
                .schedule(Timing::ShortTerm, "check-in")
                .notify(
                    Timing::ShortTerm,
                    Channel::Email,
                    "customer-admin",
                    "personalized-outreach",
                )
                .task(Timing::MediumTerm, "Success plan review", "csm")
                .task(Timing::MediumTerm, "Product adoption audit", "csm")
                .build(),
            "personalized outreach for declining health",
        ),
        "health.below-60" => plan
            .notify(
                Timing::Immediate,
                Channel::Chat,
                "csm",
                "high-priority-alert",
            )
            .task(Timing::ShortTerm, "Start retention workflow", "csm")
            .build(),
        "health.trend-down" => explain(
            plan.escalate(Timing::ShortTerm, csm_led)
                .task(Timing::ShortTerm, "Proactive intervention", "csm")
                .build(),
            "proactive intervention on a downward health trend",
        ),
        "health.stable" => plan
            .schedule(Timing::LongTerm, "qbr")
            .task(
                Timing::MediumTerm,
                "Identify expansion opportunities",
                "csm",
            )
            .notify(
                Timing::MediumTerm,
                Channel::Email,
                "customer-admin",
                "satisfaction-survey",
            )
            .build(),
        "health.optimal" => plan
            .notify(
                Timing::MediumTerm,
                Channel::Email,
                "customer-admin",
                "advocate-program",
            )
            .task(Timing::LongTerm, "Develop case study", "marketing")
            .notify(
                Timing::MediumTerm,
                Channel::Email,
                "customer-admin",
                "referral-program",
            )
            .build(),
        "expansion.ready" => plan
            .notify(
                Timing::ShortTerm,
                Channel::Chat,
                "sales",
                "expansion-handoff",
            )
            .task(
                Timing::ShortTerm,
                "Sales handoff: expansion opportunity",
                "sales",
            )
            .webhook(Timing::ShortTerm, "crm", expansion_body(ctx, signal))
            .build(),
        "usage.none" => explain(
            plan.escalate(Timing::Immediate, senior)
                .notify(
                    Timing::Immediate,
                    Channel::Email,
                    "account-owner",
                    "stakeholder-escalation",
                )
                .task(Timing::ShortTerm, "Contract renewal risk assessment", "csm")
                .task(Timing::MediumTerm, "Onboarding process review", "csm")
                .build(),
            "emergency intervention",
        ),
        "usage.low" => plan
            .schedule(Timing::ShortTerm, "training-session")
            .notify(
                Timing::MediumTerm,
                Channel::InApp,
                "customer-users",
                "feature-adoption-campaign",
            )
            .when(!selfserve, |p| {
                p.task(Timing::MediumTerm, "Identify a champion", "csm")
            })
            .build(),
        "usage.growth" => plan
            .notify(Timing::ShortTerm, Channel::Chat, "csm", "capacity-planning")
            .task(Timing::MediumTerm, "Score expansion opportunity", "sales")
            .task(Timing::LongTerm, "Document success story", "marketing")
            .build(),
        "usage.login-decline" => explain(
            plan.escalate(Timing::ShortTerm, csm_led)
                .notify(
                    Timing::ShortTerm,
                    Channel::Email,
                    "customer-admin",
                    "re-engagement",
                )
                .build(),
            "re-engagement after a login decline",
        ),
        "support.ticket-spike" => plan
            .notify(Timing::Immediate, Channel::Chat, "support", "ticket-spike")
            .task(Timing::ShortTerm, "Review support ticket spike", "support")
            .build(),
        _ => by_severity(plan, signal),
    };
    Ok(intents)
}

/// The plan for a signal without a rule of its own: an escalation sized by
/// its severity.
fn by_severity(plan: IntentBuilder<'_>, signal: &Signal) -> Vec<Intent> {
    let (timing, level) = match signal.severity {
        Severity::Critical => (Timing::Immediate, EscalationLevel::L2),
        Severity::High => (Timing::ShortTerm, EscalationLevel::L2),
        Severity::Medium => (Timing::MediumTerm, EscalationLevel::L1),
        Severity::Low | Severity::Info => return Vec::new(),
    };
    explain(
        plan.escalate(timing, level).build(),
        &format!("{} escalated by severity", signal.name),
    )
}

/// Whether the verdict carries `tag`.
fn has_tag(verdict: &Verdict, tag: &str) -> bool {
    verdict.policy_tags.iter().any(|t| t == tag)
}

/// Puts the rule's own words in front of the signal's reason on every
/// escalation, and says a freeze lasts until resolution.
fn explain(mut intents: Vec<Intent>, rule: &str) -> Vec<Intent> {
    for intent in &mut intents {
        match &mut intent.kind {
            IntentKind::Escalate(escalate) => {
                escalate.reason = format!("{rule}: {}", escalate.reason);
            }
            IntentKind::Freeze(freeze) => {
                freeze.reason = format!("account freeze until resolution: {}", freeze.reason);
            }
            _ => {}
        }
    }
    intents
}

/// The CRM webhook body for an expansion opportunity.
fn expansion_body(ctx: &Context<'_>, signal: &Signal) -> String {
    format!(
        "{{\"account_id\":{},\"opportunity\":\"expansion\",\"reason\":{}}}",
        json_string(&ctx.account.id),
        json_string(&signal.reason)
    )
}

/// `s` as a JSON string literal, quotes included.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, DEFAULT_NOW, History};
    use vigil_sdk::{EscalationLevel as L, SignalBuilder};

    const HOUR: i64 = 3_600_000;

    /// Every signal the standard triggers emit.
    const KNOWN: &[(&str, Severity)] = &[
        ("health.critical", Severity::Critical),
        ("health.declining", Severity::High),
        ("health.stable", Severity::Low),
        ("health.optimal", Severity::Info),
        ("health.below-60", Severity::High),
        ("health.trend-down", Severity::High),
        ("expansion.ready", Severity::Medium),
        ("usage.none", Severity::Critical),
        ("usage.low", Severity::Medium),
        ("usage.growth", Severity::Low),
        ("usage.login-decline", Severity::High),
        ("support.ticket-spike", Severity::High),
    ];

    fn ctx() -> Context<'static> {
        let ctx =
            ContextBuilder::new(AccountBuilder::new("acme").name("Acme Corp").build()).build();
        History::new(ctx.now).install();
        ctx
    }

    fn signal(ctx: &Context<'_>, name: &str, severity: Severity) -> Signal {
        SignalBuilder::new(ctx, name, severity, format!("{name} fired")).build()
    }

    fn verdict(tags: &[&str]) -> Verdict {
        Verdict {
            applies: true,
            reason: "test".to_string(),
            policy_tags: tags.iter().map(|t| Tag::Owned((*t).to_string())).collect(),
        }
    }

    /// Plans `name` with the verdict tags, as one line per intent.
    fn planned(name: &str, tags: &[&str]) -> Vec<String> {
        let severity = KNOWN
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Severity::High, |(_, s)| *s);
        planned_with(name, severity, tags)
    }

    fn planned_with(name: &str, severity: Severity, tags: &[&str]) -> Vec<String> {
        let ctx = ctx();
        let intents = plan(&ctx, &signal(&ctx, name, severity), &verdict(tags)).unwrap();
        intents.iter().map(line).collect()
    }

    fn timing(t: Timing) -> &'static str {
        match t {
            Timing::Immediate => "immediate",
            Timing::ShortTerm => "short-term",
            Timing::MediumTerm => "medium-term",
            Timing::LongTerm => "long-term",
        }
    }

    /// One intent as `<timing> <kind> <what>`.
    fn line(intent: &Intent) -> String {
        let what = match &intent.kind {
            IntentKind::Notify(n) => {
                let channel = match n.channel {
                    Channel::Email => "email",
                    Channel::Chat => "chat",
                    Channel::Sms => "sms",
                    Channel::InApp => "in-app",
                };
                format!("notify {channel} {} {}", n.recipient, n.template)
            }
            IntentKind::Task(t) => format!("task {} -> {}", t.title, t.assignee),
            IntentKind::Escalate(e) => {
                format!("escalate {:?}", e.level).replace("EscalationLevel::", "")
            }
            IntentKind::Schedule(s) => format!("schedule {}", s.what),
            IntentKind::Webhook(w) => format!("webhook {}", w.connector),
            IntentKind::Freeze(_) => "freeze".to_string(),
        };
        format!("{} {what}", timing(intent.timing))
    }

    fn bucket_end(t: Timing) -> i64 {
        match t {
            Timing::Immediate => HOUR,
            Timing::ShortTerm => 24 * HOUR,
            Timing::MediumTerm => 7 * 24 * HOUR,
            Timing::LongTerm => 28 * 24 * HOUR,
        }
    }

    #[test]
    fn health_critical_escalates_to_a_senior_csm_deploys_the_playbook_and_freezes() {
        assert_eq!(
            planned("health.critical", &[]),
            [
                "immediate escalate L2",
                "immediate task Deploy intervention playbook -> csm",
                "immediate freeze"
            ]
        );
    }

    #[test]
    fn health_critical_on_an_executive_account_goes_to_leadership_and_the_sponsor() {
        assert_eq!(
            planned(
                "health.critical",
                &["monitoring-24x7", "executive-notification"]
            ),
            [
                "immediate escalate L3",
                "immediate task Deploy intervention playbook -> csm",
                "immediate notify email executive-sponsor critical-health-executive",
                "immediate freeze"
            ]
        );
    }

    #[test]
    fn health_critical_explains_the_escalation_and_the_freeze() {
        let ctx = ctx();
        let s = signal(&ctx, "health.critical", Severity::Critical);
        let intents = plan(&ctx, &s, &verdict(&[])).unwrap();
        let IntentKind::Escalate(escalate) = &intents[0].kind else {
            unreachable!("{:?}", intents[0])
        };
        assert_eq!(
            escalate.reason,
            "immediate escalation to senior CSM: health.critical fired"
        );
        let exec = plan(&ctx, &s, &verdict(&["executive-notification"])).unwrap();
        let IntentKind::Escalate(escalate) = &exec[0].kind else {
            unreachable!("{:?}", exec[0])
        };
        assert_eq!(
            escalate.reason,
            "immediate escalation to leadership: health.critical fired"
        );
        let IntentKind::Freeze(freeze) = &intents[2].kind else {
            unreachable!("{:?}", intents[2])
        };
        assert_eq!(
            freeze.reason,
            "account freeze until resolution: health.critical fired"
        );
    }

    #[test]
    fn health_declining_gets_csm_led_outreach_and_reviews() {
        assert_eq!(
            planned("health.declining", &["shared-csm"]),
            [
                "short-term escalate L2",
                "short-term schedule check-in",
                "short-term notify email customer-admin personalized-outreach",
                "medium-term task Success plan review -> csm",
                "medium-term task Product adoption audit -> csm"
            ]
        );
    }

    #[test]
    fn health_declining_on_a_self_service_account_stays_automated() {
        assert_eq!(
            planned("health.declining", &["self-service-first"]),
            [
                "short-term notify email customer-admin self-service-resources",
                "short-term escalate L1"
            ]
        );
    }

    #[test]
    fn health_below_60_alerts_the_csm_and_starts_retention() {
        assert_eq!(
            planned("health.below-60", &[]),
            [
                "immediate notify chat csm high-priority-alert",
                "short-term task Start retention workflow -> csm"
            ]
        );
    }

    #[test]
    fn health_trend_down_escalates_csm_led_or_automated_for_self_service() {
        assert_eq!(
            planned("health.trend-down", &[]),
            [
                "short-term escalate L2",
                "short-term task Proactive intervention -> csm"
            ]
        );
        assert_eq!(
            planned("health.trend-down", &["self-service-first"])[0],
            "short-term escalate L1"
        );
    }

    #[test]
    fn health_stable_schedules_a_qbr_looks_for_expansion_and_surveys() {
        assert_eq!(
            planned("health.stable", &[]),
            [
                "long-term schedule qbr",
                "medium-term task Identify expansion opportunities -> csm",
                "medium-term notify email customer-admin satisfaction-survey"
            ]
        );
    }

    #[test]
    fn health_optimal_enrols_advocates_case_studies_and_referrals() {
        assert_eq!(
            planned("health.optimal", &[]),
            [
                "medium-term notify email customer-admin advocate-program",
                "long-term task Develop case study -> marketing",
                "medium-term notify email customer-admin referral-program"
            ]
        );
    }

    #[test]
    fn expansion_ready_hands_off_to_sales_and_the_crm() {
        assert_eq!(
            planned("expansion.ready", &[]),
            [
                "short-term notify chat sales expansion-handoff",
                "short-term task Sales handoff: expansion opportunity -> sales",
                "short-term webhook crm"
            ]
        );
    }

    #[test]
    fn the_crm_webhook_body_is_escaped_json() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme \"eu\"").build()).build();
        History::new(ctx.now).install();
        let s = SignalBuilder::new(
            &ctx,
            "expansion.ready",
            Severity::Medium,
            "seats 95%\\100\n\u{1}é",
        )
        .build();
        let intents = plan(&ctx, &s, &verdict(&[])).unwrap();
        let IntentKind::Webhook(webhook) = &intents[2].kind else {
            unreachable!("{:?}", intents[2])
        };
        assert_eq!(
            webhook.body,
            r#"{"account_id":"acme \"eu\"","opportunity":"expansion","reason":"seats 95%\\100\n\u0001é"}"#
        );
    }

    #[test]
    fn usage_none_is_an_emergency_with_stakeholder_escalation() {
        assert_eq!(
            planned("usage.none", &[]),
            [
                "immediate escalate L2",
                "immediate notify email account-owner stakeholder-escalation",
                "short-term task Contract renewal risk assessment -> csm",
                "medium-term task Onboarding process review -> csm"
            ]
        );
        assert_eq!(
            planned("usage.none", &["executive-notification"])[0],
            "immediate escalate L3"
        );
    }

    #[test]
    fn usage_low_trains_campaigns_and_looks_for_a_champion() {
        assert_eq!(
            planned("usage.low", &[]),
            [
                "short-term schedule training-session",
                "medium-term notify in-app customer-users feature-adoption-campaign",
                "medium-term task Identify a champion -> csm"
            ]
        );
    }

    #[test]
    fn usage_low_on_a_self_service_account_skips_the_champion_task() {
        assert_eq!(
            planned("usage.low", &["self-service-first"]),
            [
                "short-term schedule training-session",
                "medium-term notify in-app customer-users feature-adoption-campaign"
            ]
        );
    }

    #[test]
    fn usage_growth_plans_capacity_scores_expansion_and_documents_success() {
        assert_eq!(
            planned("usage.growth", &[]),
            [
                "short-term notify chat csm capacity-planning",
                "medium-term task Score expansion opportunity -> sales",
                "long-term task Document success story -> marketing"
            ]
        );
    }

    #[test]
    fn a_login_decline_escalates_and_re_engages() {
        assert_eq!(
            planned("usage.login-decline", &[]),
            [
                "short-term escalate L2",
                "short-term notify email customer-admin re-engagement"
            ]
        );
        assert_eq!(
            planned("usage.login-decline", &["self-service-first"])[0],
            "short-term escalate L1"
        );
    }

    #[test]
    fn a_ticket_spike_alerts_support_and_asks_for_a_review() {
        assert_eq!(
            planned("support.ticket-spike", &[]),
            [
                "immediate notify chat support ticket-spike",
                "short-term task Review support ticket spike -> support"
            ]
        );
    }

    #[test]
    fn executive_notification_needs_the_executive_tag() {
        let sponsor = |lines: Vec<String>| lines.iter().any(|l| l.contains("executive-sponsor"));
        for (name, _) in KNOWN {
            assert!(
                !sponsor(planned(name, &["dedicated-csm", "monitoring-24x7"])),
                "{name}"
            );
        }
        assert!(sponsor(planned(
            "health.critical",
            &["executive-notification"]
        )));
    }

    #[test]
    fn monitoring_tags_change_nothing() {
        for (name, _) in KNOWN {
            let bare = planned(name, &[]);
            assert_eq!(planned(name, &["monitoring-24x7"]), bare, "{name}");
            assert_eq!(
                planned(name, &["business-hours-monitoring"]),
                bare,
                "{name}"
            );
        }
    }

    #[test]
    fn a_verdict_that_does_not_apply_plans_nothing() {
        let ctx = ctx();
        let mut v = verdict(&["executive-notification"]);
        v.applies = false;
        for (name, severity) in KNOWN {
            assert!(
                plan(&ctx, &signal(&ctx, name, *severity), &v)
                    .unwrap()
                    .is_empty()
            );
        }
        let unknown = signal(&ctx, "hipaa.breach", Severity::Critical);
        assert!(plan(&ctx, &unknown, &v).unwrap().is_empty());
    }

    #[test]
    fn unknown_signals_escalate_by_severity() {
        let by = |severity| planned_with("sox.control-gap", severity, &["executive-notification"]);
        assert_eq!(by(Severity::Critical), ["immediate escalate L2"]);
        assert_eq!(by(Severity::High), ["short-term escalate L2"]);
        assert_eq!(by(Severity::Medium), ["medium-term escalate L1"]);
        assert!(by(Severity::Low).is_empty());
        assert!(by(Severity::Info).is_empty());
    }

    #[test]
    fn an_unknown_signal_escalation_names_the_signal() {
        let ctx = ctx();
        let s = signal(&ctx, "pci.scan-failed", Severity::High);
        let intents = plan(&ctx, &s, &verdict(&[])).unwrap();
        let IntentKind::Escalate(escalate) = &intents[0].kind else {
            unreachable!("{:?}", intents[0])
        };
        assert_eq!(escalate.level, L::L2);
        assert_eq!(
            escalate.reason,
            "pci.scan-failed escalated by severity: pci.scan-failed fired"
        );
    }

    #[test]
    fn due_times_are_the_end_of_the_timing_bucket() {
        let ctx = ctx();
        let v = verdict(&["executive-notification"]);
        let mut seen = BTreeSet::new();
        for (name, severity) in KNOWN {
            for intent in plan(&ctx, &signal(&ctx, name, *severity), &v).unwrap() {
                let due = match &intent.kind {
                    IntentKind::Task(t) => t.due_at,
                    IntentKind::Escalate(e) => e.due_at,
                    IntentKind::Schedule(s) => s.at,
                    _ => continue,
                };
                assert_eq!(
                    due,
                    DEFAULT_NOW + bucket_end(intent.timing),
                    "{name}: {}",
                    line(&intent)
                );
                seen.insert(timing(intent.timing));
            }
        }
        assert_eq!(seen.len(), 4, "every bucket is exercised: {seen:?}");
    }

    #[test]
    fn due_times_follow_the_evaluation_time() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme").build())
            .now(DEFAULT_NOW + 5 * HOUR)
            .build();
        History::new(ctx.now).install();
        let intents = plan(
            &ctx,
            &signal(&ctx, "health.stable", Severity::Low),
            &verdict(&[]),
        )
        .unwrap();
        let IntentKind::Schedule(qbr) = &intents[0].kind else {
            unreachable!("{:?}", intents[0])
        };
        assert_eq!(qbr.at, DEFAULT_NOW + 5 * HOUR + 28 * 24 * HOUR);
    }

    #[test]
    fn idempotency_keys_are_unique_within_a_plan() {
        let ctx = ctx();
        for tags in [
            &[][..],
            &["executive-notification"],
            &["self-service-first"],
        ] {
            for (name, severity) in KNOWN {
                let intents = plan(&ctx, &signal(&ctx, name, *severity), &verdict(tags)).unwrap();
                let keys: BTreeSet<&str> =
                    intents.iter().map(|i| i.idempotency_key.as_str()).collect();
                assert_eq!(keys.len(), intents.len(), "{name} {tags:?}");
            }
        }
    }

    #[test]
    fn the_same_input_plans_the_same_intents_with_the_same_keys() {
        let ctx = ctx();
        let v = verdict(&["executive-notification"]);
        for (name, severity) in KNOWN {
            let s = signal(&ctx, name, *severity);
            let first = plan(&ctx, &s, &v).unwrap();
            let second = plan(&ctx, &s, &v).unwrap();
            assert_eq!(first, second, "{name}");
        }
    }

    #[test]
    fn notifications_summarise_the_account_and_the_signal() {
        let ctx = ctx();
        let s = signal(&ctx, "health.below-60", Severity::High);
        let intents = plan(&ctx, &s, &verdict(&[])).unwrap();
        let IntentKind::Notify(notify) = &intents[0].kind else {
            unreachable!("{:?}", intents[0])
        };
        assert_eq!(notify.summary, "Acme Corp: health.below-60 fired");
    }
}
