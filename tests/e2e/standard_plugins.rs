//! The seed rules of each standard plugin, through the Wasm components.

use vigil_host::history::{DAY_MS, MetricHistory};
use vigil_host::runtime::bindings::types::{
    Channel, EscalationLevel, Industry, IntentKind, Rag, ScoreSummary, Severity, Tier,
};
use vigil_host::runtime::{Outcome, Signal, Verdict};

use crate::support::{NOW, account, context, input, load, runtime, standard};

fn daily(history: &mut MetricHistory, metric: &str, days: std::ops::Range<i64>, value: f64) {
    for day in days {
        history.record(metric, NOW - day * DAY_MS, value);
    }
}

#[test]
fn health_score_is_critical_and_red_for_an_abandoned_account_and_optimal_for_a_thriving_one() {
    let runtime = runtime();
    let scorer = load(&runtime, standard("health-score")).unwrap();

    let mut history = MetricHistory::default();
    daily(&mut history, "logins", 0..30, 1.0);
    daily(&mut history, "logins", 30..60, 10.0);
    daily(&mut history, "support.ticket.opened", 0..20, 1.0);
    history.record("nps", NOW - 5 * DAY_MS, 1.0);
    history.record("payment-days-overdue", NOW - DAY_MS, 70.0);
    let ctx = context(
        account("sinking", Tier::MidMarket, Industry::Technology, 100, 6),
        "usage.weekly",
    );
    let card = scorer.score(input(&mut history), &ctx).output.unwrap();
    assert!(card.value < 30.0, "{}", card.value);
    assert_eq!((card.band.as_str(), card.rag), ("critical", Rag::Red));
    let sum: f64 = card.factors.iter().map(|f| f.contribution).sum();
    assert!(
        (sum - card.value).abs() < 1e-9,
        "factors add up to the value"
    );
    assert_eq!(card.factors.len(), 5);

    let mut history = MetricHistory::default();
    daily(&mut history, "logins", 0..30, 20.0);
    daily(&mut history, "logins", 30..60, 15.0);
    history.record("nps", NOW - 5 * DAY_MS, 10.0);
    let ctx = context(
        account("thriving", Tier::MidMarket, Industry::Technology, 100, 95),
        "usage.weekly",
    );
    let card = scorer.score(input(&mut history), &ctx).output.unwrap();
    assert_eq!(
        (card.band.as_str(), card.rag),
        ("optimal", Rag::Green),
        "{}",
        card.value
    );
}

fn with_health(value: f64, tier: Tier) -> vigil_host::runtime::bindings::types::Context {
    let mut ctx = context(
        account("acme", tier, Industry::Technology, 100, 60),
        "usage.weekly",
    );
    ctx.scores.push(ScoreSummary {
        name: "health".into(),
        value,
        band: String::new(),
        rag: Rag::Red,
    });
    ctx
}

#[test]
fn health_triggers_raise_the_band_signal_and_the_below_60_alert() {
    let runtime = runtime();
    let trigger = load(&runtime, standard("health-triggers")).unwrap();
    let mut history = MetricHistory::default();
    let names = |value| -> Vec<String> {
        let mut history = MetricHistory::default();
        trigger
            .evaluate(input(&mut history), &with_health(value, Tier::MidMarket))
            .output
            .unwrap()
            .into_iter()
            .map(|s| s.name.into_string())
            .collect()
    };
    assert_eq!(names(25.0), ["health.critical", "health.below-60"]);
    assert_eq!(names(45.0), ["health.declining", "health.below-60"]);
    assert_eq!(names(65.0), ["health.stable"]);
    assert_eq!(names(85.0), ["health.optimal"]);

    // A drop of 20 % against the previous month's average: proactive intervention.
    daily(&mut history, "health", 8..37, 80.0);
    let signals = trigger
        .evaluate(input(&mut history), &with_health(64.0, Tier::MidMarket))
        .output
        .unwrap();
    assert!(
        signals.iter().any(|s| s.name == "health.trend-down"),
        "{signals:?}"
    );
}

#[test]
fn usage_triggers_flag_no_usage_low_usage_and_a_halving_of_logins() {
    let runtime = runtime();
    let trigger = load(&runtime, standard("usage-triggers")).unwrap();
    let signals = |active: u32, history: &mut MetricHistory| -> Vec<String> {
        let ctx = context(
            account("acme", Tier::MidMarket, Industry::Technology, 100, active),
            "usage.weekly",
        );
        trigger
            .evaluate(input(history), &ctx)
            .output
            .unwrap()
            .into_iter()
            .map(|s| s.name.into_string())
            .collect()
    };
    assert_eq!(signals(0, &mut MetricHistory::default()), ["usage.none"]);
    assert_eq!(signals(29, &mut MetricHistory::default()), ["usage.low"]);
    assert!(signals(30, &mut MetricHistory::default()).is_empty());
    let mut history = MetricHistory::default();
    daily(&mut history, "logins", 0..30, 4.0);
    daily(&mut history, "logins", 30..60, 10.0);
    assert_eq!(signals(80, &mut history), ["usage.login-decline"]);
}

fn signal(name: &str, severity: Severity) -> Signal {
    Signal {
        name: name.into(),
        severity,
        reason: format!("{name} fired").into(),
        dedup_key: format!("acme:{name}").into(),
        cooldown_secs: 3600,
    }
}

#[test]
fn tier_conditions_grant_executive_notification_to_enterprise_accounts_only() {
    let runtime = runtime();
    let condition = load(&runtime, standard("tier-conditions")).unwrap();
    let verdict = |tier: Tier, severity: Severity| -> Verdict {
        let ctx = context(
            account("acme", tier, Industry::Healthcare, 100, 60),
            "usage.weekly",
        );
        let mut history = MetricHistory::default();
        condition
            .check(
                input(&mut history),
                &ctx,
                &signal("health.critical", severity),
            )
            .output
            .unwrap()
    };
    let enterprise = verdict(Tier::Enterprise, Severity::Critical);
    assert!(enterprise.applies);
    assert!(
        enterprise
            .policy_tags
            .contains(&"executive-notification".into())
    );
    assert!(
        enterprise.policy_tags.contains(&"hipaa".into()),
        "industry tags too"
    );
    let mid_market = verdict(Tier::MidMarket, Severity::Critical);
    assert!(
        !mid_market
            .policy_tags
            .contains(&"executive-notification".into())
    );
    assert!(
        mid_market
            .policy_tags
            .contains(&"business-hours-monitoring".into())
    );
    assert!(
        !verdict(Tier::SmallBusiness, Severity::Info).applies,
        "info is left to self-service"
    );
}

#[test]
fn escalation_actions_follow_the_matrix_and_the_timing_buckets() {
    let runtime = runtime();
    let action = load(&runtime, standard("escalation-actions")).unwrap();
    let plan = |tags: &[&str]| {
        let ctx = context(
            account("acme", Tier::Enterprise, Industry::Technology, 100, 10),
            "usage.weekly",
        );
        let verdict = Verdict {
            applies: true,
            reason: Default::default(),
            policy_tags: tags.iter().map(|t| (*t).into()).collect(),
        };
        let mut history = MetricHistory::default();
        let invocation = action.plan(
            input(&mut history),
            &ctx,
            &signal("health.critical", Severity::Critical),
            &verdict,
        );
        assert_eq!(invocation.record.outcome, Outcome::Ok);
        invocation.output.unwrap()
    };
    let executive = plan(&["executive-notification"]);
    let levels: Vec<EscalationLevel> = executive
        .iter()
        .filter_map(|i| match &i.kind {
            IntentKind::Escalate(e) => Some(e.level),
            _ => None,
        })
        .collect();
    assert_eq!(levels, [EscalationLevel::L3]);
    assert!(executive.iter().any(|i| matches!(&i.kind, IntentKind::Notify(n) if n.recipient == "executive-sponsor" && n.channel == Channel::Email)));
    assert!(
        executive
            .iter()
            .any(|i| matches!(i.kind, IntentKind::Freeze(_))),
        "account freeze until resolution"
    );
    for intent in &executive {
        if let IntentKind::Escalate(e) = &intent.kind {
            assert_eq!(e.due_at, NOW + 3_600_000, "immediate: within the hour");
        }
    }

    let csm_led = plan(&[]);
    assert!(
        csm_led
            .iter()
            .any(|i| matches!(&i.kind, IntentKind::Escalate(e) if e.level == EscalationLevel::L2))
    );
    assert!(
        !csm_led.iter().any(
            |i| matches!(&i.kind, IntentKind::Notify(n) if n.recipient == "executive-sponsor")
        )
    );
}

#[test]
fn lead_score_ranks_an_engaged_enterprise_lead_hot_and_a_silent_one_cold() {
    let runtime = runtime();
    let scorer = load(&runtime, standard("lead-score")).unwrap();
    assert!(scorer.subscribes_to("lead.engagement"));
    assert!(!scorer.subscribes_to("usage.weekly"));
    let mut history = MetricHistory::default();
    for day in [1, 3, 8, 15] {
        history.record("lead.engagement", NOW - day * DAY_MS, 1.0);
        history.record("email-opens", NOW - day * DAY_MS, 5.0);
        history.record("site-visits", NOW - day * DAY_MS, 4.0);
    }
    history.record("demo-requests", NOW - 2 * DAY_MS, 1.0);
    let ctx = context(
        account("lead", Tier::Enterprise, Industry::Technology, 500, 0),
        "lead.engagement",
    );
    let card = scorer.score(input(&mut history), &ctx).output.unwrap();
    assert_eq!(card.name, "lead");
    assert_eq!(card.band, "hot", "{}", card.value);

    let ctx = context(
        account("quiet", Tier::SmallBusiness, Industry::Other, 5, 0),
        "lead.engagement",
    );
    let card = scorer
        .score(input(&mut MetricHistory::default()), &ctx)
        .output
        .unwrap();
    assert_eq!(card.band, "cold", "{}", card.value);
}
