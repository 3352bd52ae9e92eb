//! `vigil demo`: a realistic portfolio generated from a fixed seed, run
//! through the plugins, summarised.
//!
//! Each account gets an archetype (thriving, steady, declining, at risk,
//! dormant) that shapes 16 weeks of events: weekly usage, support tickets,
//! NPS and sentiment responses, overdue payments and, for a fifth of the
//! accounts, sales lead engagement. The same seed gives the same portfolio
//! and the same decisions; only the throughput varies between runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use crate::history::DAY_MS;
use crate::pipeline::{AccountState, Disposition, Evaluation, Pipeline, PipelineError};
use crate::runtime::bindings::types::{
    Account, Attribute, EscalationLevel, Event, Industry, IntentKind, Tier,
};
use crate::runtime::{InvocationRecord, Outcome};

/// The evaluation time at the end of the generated history:
/// 2026-06-01T00:00:00Z.
pub const DEMO_NOW: i64 = 1_780_272_000_000;

/// Weeks of history generated per account.
const WEEKS: i64 = 16;

/// How a generated account behaves over its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archetype {
    Thriving,
    Steady,
    Declining,
    AtRisk,
    Dormant,
}

/// A generated account and its events, in time order.
#[derive(Debug, Clone)]
pub struct GeneratedAccount {
    /// The account profile.
    pub account: Account,
    /// Its events, oldest first.
    pub events: Vec<Event>,
}

const NAMES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Cyberdyne",
    "Aperture",
    "Nakatomi",
    "Stark",
    "Wayne",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Massive Dynamic",
    "Pied Piper",
    "Dunder",
    "Prestige",
    "Sterling",
    "Bluth",
    "Gekko",
];

fn industry_suffix(industry: Industry) -> &'static str {
    match industry {
        Industry::Healthcare => "Health",
        Industry::FinancialServices => "Capital",
        Industry::ECommerce => "Shop",
        Industry::Technology => "Labs",
        Industry::Manufacturing => "Works",
        Industry::Education => "Academy",
        Industry::Other => "Group",
    }
}

/// Generates `count` accounts from `seed`.
pub fn generate_portfolio(count: usize, seed: u64) -> Vec<GeneratedAccount> {
    (0..count)
        .map(|index| generate_account(index, seed))
        .collect()
}

fn generate_account(index: usize, seed: u64) -> GeneratedAccount {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let tier = match rng.random_range(0..100) {
        0..15 => Tier::Enterprise,
        15..50 => Tier::MidMarket,
        _ => Tier::SmallBusiness,
    };
    let industry = [
        Industry::Healthcare,
        Industry::FinancialServices,
        Industry::ECommerce,
        Industry::Technology,
        Industry::Technology,
        Industry::Manufacturing,
        Industry::Education,
        Industry::Other,
    ][rng.random_range(0..8)];
    let archetype = match rng.random_range(0..100) {
        0..25 => Archetype::Thriving,
        25..60 => Archetype::Steady,
        60..80 => Archetype::Declining,
        80..93 => Archetype::AtRisk,
        _ => Archetype::Dormant,
    };
    let seats: u32 = match tier {
        Tier::Enterprise => rng.random_range(200..2000),
        Tier::MidMarket => rng.random_range(50..300),
        Tier::SmallBusiness => rng.random_range(5..60),
    };
    let price_per_seat: u64 = match tier {
        Tier::Enterprise => 900,
        Tier::MidMarket => 600,
        Tier::SmallBusiness => 400,
    };
    let id = format!("acct-{index:05}");
    let start = DEMO_NOW - WEEKS * 7 * DAY_MS;
    let account = Account {
        id: id.clone(),
        name: format!(
            "{} {} {index}",
            NAMES[rng.random_range(0..NAMES.len())],
            industry_suffix(industry)
        ),
        tier,
        industry,
        licensed_seats: seats,
        active_users: 0,
        arr: u64::from(seats) * price_per_seat,
        contract_start: Some(start - rng.random_range(30..700) * DAY_MS),
        renewal_date: Some(DEMO_NOW + rng.random_range(-20..365) * DAY_MS),
        attributes: vec![Attribute {
            key: "region".into(),
            value: ["emea", "amer", "apac"][rng.random_range(0..3)].into(),
        }],
    };

    let mut events = Vec::new();
    let push = |events: &mut Vec<Event>, at: i64, kind: &str, payload: serde_json::Value| {
        events.push(Event {
            id: String::new(),
            account_id: id.clone(),
            kind: kind.to_string(),
            occurred_at: at,
            payload: payload.to_string(),
        });
    };

    let (usage_start, usage_end): (f64, f64) = match archetype {
        Archetype::Thriving => (rng.random_range(0.70..0.85), rng.random_range(0.88..1.0)),
        Archetype::Steady => (rng.random_range(0.50..0.80), rng.random_range(0.50..0.80)),
        Archetype::Declining => (rng.random_range(0.60..0.80), rng.random_range(0.20..0.40)),
        Archetype::AtRisk => (rng.random_range(0.35..0.50), rng.random_range(0.08..0.22)),
        Archetype::Dormant => (rng.random_range(0.20..0.40), 0.0),
    };
    let logins_per_user: f64 = match archetype {
        Archetype::Thriving => rng.random_range(5.0..8.0),
        Archetype::Steady => rng.random_range(3.0..6.0),
        _ => rng.random_range(2.0..4.0),
    };
    let weekly_ticket_rate = f64::from(seats)
        * 0.004
        * match archetype {
            Archetype::AtRisk => 3.0,
            Archetype::Declining => 1.8,
            _ => 1.0,
        };
    let lead_contact = rng.random_range(0..5) == 0;
    let lead_intensity: f64 = match archetype {
        Archetype::Thriving => rng.random_range(1.0..3.0),
        Archetype::Steady => rng.random_range(0.4..1.5),
        _ => rng.random_range(0.0..0.6),
    };

    for week in 0..WEEKS {
        let progress = week as f64 / (WEEKS - 1) as f64;
        let week_start = start + week * 7 * DAY_MS;
        let mut ratio = usage_start + (usage_end - usage_start) * progress;
        if archetype == Archetype::Dormant && week >= WEEKS - 4 {
            ratio = 0.0;
        }
        let active = (f64::from(seats) * ratio * rng.random_range(0.95..1.05))
            .round()
            .max(0.0) as u64;
        let active = active.min(u64::from(seats));
        let login_factor = match archetype {
            Archetype::Declining | Archetype::AtRisk => 1.0 - 0.6 * progress,
            _ => 1.0,
        };
        let logins = (active as f64 * logins_per_user * login_factor).round() as u64;
        push(
            &mut events,
            week_start + rng.random_range(0..2) * DAY_MS,
            "usage.weekly",
            json!({ "active_users": active, "logins": logins }),
        );

        let spike = archetype == Archetype::AtRisk && week >= WEEKS - 2;
        let rate = weekly_ticket_rate * if spike { 4.0 } else { 1.0 };
        let tickets = (rate + rng.random_range(0.0..1.0)).floor() as i64;
        for _ in 0..tickets.min(40) {
            let priority = ["low", "normal", "high"][rng.random_range(0..3)];
            push(
                &mut events,
                week_start + rng.random_range(0..7 * DAY_MS),
                "support.ticket.opened",
                json!({ "priority": priority }),
            );
        }

        if week % 6 == 3 && archetype != Archetype::Dormant {
            let (low, high) = match archetype {
                Archetype::Thriving => (8.0, 10.0),
                Archetype::Steady => (6.0, 9.0),
                Archetype::Declining => (4.0, 7.0),
                _ => (1.0, 5.0),
            };
            let score: f64 = rng.random_range(low..high);
            push(
                &mut events,
                week_start + rng.random_range(0..7) * DAY_MS,
                "nps.response",
                json!({ "nps": score.round() }),
            );
        }
        if week % 4 == 1 {
            let sentiment: f64 = match archetype {
                Archetype::Thriving => rng.random_range(0.3..0.9),
                Archetype::Steady => rng.random_range(-0.1..0.6),
                Archetype::Declining => rng.random_range(-0.5..0.2),
                _ => rng.random_range(-0.9..-0.2),
            };
            push(
                &mut events,
                week_start + rng.random_range(0..7) * DAY_MS,
                "sentiment.measured",
                json!({ "sentiment": (sentiment * 100.0).round() / 100.0 }),
            );
        }
        if lead_contact {
            let intensity = lead_intensity * (0.5 + progress);
            push(
                &mut events,
                week_start + rng.random_range(0..7) * DAY_MS,
                "lead.engagement",
                json!({
                    "email_opens": (intensity * rng.random_range(0.0..4.0)).round(),
                    "site_visits": (intensity * rng.random_range(0.0..3.0)).round(),
                    "content_downloads": (intensity * rng.random_range(0.0..1.0)).round(),
                    "demo_requests": u8::from(intensity > 2.0 && rng.random_range(0..4) == 0),
                }),
            );
        }
    }
    let overdue_chance = match archetype {
        Archetype::AtRisk | Archetype::Dormant => 45,
        Archetype::Declining => 15,
        _ => 4,
    };
    if rng.random_range(0..100) < overdue_chance {
        let days: i64 = rng.random_range(10..90);
        push(
            &mut events,
            DEMO_NOW - rng.random_range(1..20) * DAY_MS,
            "payment.overdue",
            json!({ "payment_days_overdue": days }),
        );
    }

    events.sort_by_key(|e| e.occurred_at);
    for (n, event) in events.iter_mut().enumerate() {
        event.id = format!("{id}-e{n:04}");
    }
    GeneratedAccount { account, events }
}

/// Totals gathered over a run.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// Accounts run.
    pub accounts: usize,
    /// Events evaluated.
    pub events: usize,
    /// Final states, in account order.
    pub states: Vec<AccountState>,
    /// Signals by name: (acted, suppressed, not applicable).
    pub signals: BTreeMap<String, (u64, u64, u64)>,
    /// Intents by kind (and level for escalations).
    pub intents: BTreeMap<String, u64>,
    /// Per plugin: calls, faults, plugin errors, fuel.
    pub plugins: BTreeMap<String, PluginStats>,
    /// Events rejected by the pipeline.
    pub rejected: Vec<PipelineError>,
    /// Wall-clock time spent evaluating.
    pub elapsed: Duration,
    /// Worker threads used.
    pub threads: usize,
}

/// Calls into one plugin during a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct PluginStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that trapped or hit a limit.
    pub faults: u64,
    /// Calls that returned a domain error.
    pub errors: u64,
    /// Fuel burned in all.
    pub fuel: u64,
}

impl DemoReport {
    fn absorb(&mut self, evaluation: &Evaluation) {
        self.events += 1;
        for signal in &evaluation.signals {
            let entry = self
                .signals
                .entry(signal.signal.name.to_string())
                .or_default();
            match signal.disposition {
                Disposition::Acted { .. } => entry.0 += 1,
                Disposition::Suppressed { .. } => entry.1 += 1,
                Disposition::NotApplicable { .. } | Disposition::ActionFailed { .. } => {
                    entry.2 += 1
                }
            }
        }
        for planned in &evaluation.intents {
            *self
                .intents
                .entry(intent_label(&planned.intent.kind))
                .or_default() += 1;
        }
        for record in &evaluation.invocations {
            self.absorb_invocation(record);
        }
    }

    fn absorb_invocation(&mut self, record: &InvocationRecord) {
        let stats = self
            .plugins
            .entry(format!("{}@{}", record.plugin.name, record.plugin.version))
            .or_default();
        stats.calls += 1;
        stats.fuel += record.fuel_used;
        match record.outcome {
            Outcome::Ok => {}
            Outcome::PluginError { .. } => stats.errors += 1,
            _ => stats.faults += 1,
        }
    }

    fn merge(&mut self, other: DemoReport) {
        self.events += other.events;
        for (name, (a, s, n)) in other.signals {
            let entry = self.signals.entry(name).or_default();
            entry.0 += a;
            entry.1 += s;
            entry.2 += n;
        }
        for (kind, count) in other.intents {
            *self.intents.entry(kind).or_default() += count;
        }
        for (plugin, stats) in other.plugins {
            let entry = self.plugins.entry(plugin).or_default();
            entry.calls += stats.calls;
            entry.faults += stats.faults;
            entry.errors += stats.errors;
            entry.fuel += stats.fuel;
        }
        self.rejected.extend(other.rejected);
    }
}

/// `notify`, `task`, `escalate L2`, ...
pub fn intent_label(kind: &IntentKind) -> String {
    match kind {
        IntentKind::Notify(_) => "notify".into(),
        IntentKind::Task(_) => "task".into(),
        IntentKind::Escalate(e) => format!(
            "escalate {}",
            match e.level {
                EscalationLevel::L1 => "L1 (automated)",
                EscalationLevel::L2 => "L2 (CSM-led)",
                EscalationLevel::L3 => "L3 (leadership)",
            }
        ),
        IntentKind::Schedule(_) => "schedule".into(),
        IntentKind::Webhook(_) => "webhook".into(),
        IntentKind::Freeze(_) => "freeze".into(),
    }
}

/// The most accounts a worker takes at a time. Their events run in waves
/// (every account's next event) through `Pipeline::process_batch`, as the
/// service's evaluator runs them.
const ACCOUNTS_PER_GROUP: usize = 256;

/// Runs `portfolio` through `pipeline` on `threads` workers, each account's
/// events in order on one worker.
pub fn run(pipeline: &Pipeline, portfolio: Vec<GeneratedAccount>, threads: usize) -> DemoReport {
    let span = tracing::info_span!("vigil.demo.run", accounts = portfolio.len(), threads);
    let _entered = span.enter();
    let threads = threads.max(1);
    let accounts = portfolio.len();
    let next = AtomicUsize::new(0);
    // Small portfolios still give every worker a share.
    let group_size = ACCOUNTS_PER_GROUP.min(accounts.div_ceil(threads)).max(1);
    let slots: Vec<Mutex<Option<GeneratedAccount>>> =
        portfolio.into_iter().map(|a| Mutex::new(Some(a))).collect();
    let finished: Vec<Mutex<Option<AccountState>>> =
        (0..accounts).map(|_| Mutex::new(None)).collect();
    let started = Instant::now();
    let partials: Vec<DemoReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut report = DemoReport::default();
                    loop {
                        let first = next.fetch_add(group_size, Ordering::Relaxed);
                        if first >= accounts {
                            break;
                        }
                        let mut group: Vec<(usize, AccountState, Vec<Event>)> = (first
                            ..accounts.min(first + group_size))
                            .filter_map(|index| {
                                let generated = slots.get(index)?.lock().ok()?.take()?;
                                Some((
                                    index,
                                    AccountState::new(generated.account),
                                    generated.events,
                                ))
                            })
                            .collect();
                        let waves = group.iter().map(|(_, _, events)| events.len()).max();
                        for wave in 0..waves.unwrap_or(0) {
                            let mut batch: Vec<(&mut AccountState, &Event)> = group
                                .iter_mut()
                                .filter_map(|(_, state, events)| {
                                    events.get(wave).map(|event| (state, event))
                                })
                                .collect();
                            for result in pipeline.process_batch(&mut batch) {
                                match result {
                                    Ok(evaluation) => report.absorb(&evaluation),
                                    Err(error) => report.rejected.push(error),
                                }
                            }
                        }
                        for (index, state, _) in group {
                            if let Some(done) = finished.get(index)
                                && let Ok(mut done) = done.lock()
                            {
                                *done = Some(state);
                            }
                        }
                    }
                    report
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let elapsed = started.elapsed();
    let mut report = DemoReport {
        accounts,
        elapsed,
        threads,
        ..DemoReport::default()
    };
    for partial in partials {
        report.merge(partial);
    }
    report.states = finished
        .into_iter()
        .filter_map(|slot| slot.into_inner().ok().flatten())
        .collect();
    report
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Enterprise => "Enterprise",
        Tier::MidMarket => "Mid-Market",
        Tier::SmallBusiness => "Small Business",
    }
}

fn industry_name(industry: Industry) -> &'static str {
    match industry {
        Industry::Healthcare => "healthcare",
        Industry::FinancialServices => "financial services",
        Industry::ECommerce => "e-commerce",
        Industry::Technology => "technology",
        Industry::Manufacturing => "manufacturing",
        Industry::Education => "education",
        Industry::Other => "other",
    }
}

/// The summary `vigil demo` prints.
pub fn render(report: &DemoReport, plugins: &[(String, String, u64)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vigil demo: {} accounts, {} events, {} plugins",
        report.accounts,
        report.events,
        plugins.len()
    );
    for (label, digest, fuel) in plugins {
        let _ = writeln!(
            out,
            "  {label:<28} sha256:{}  fuel budget {fuel}",
            &digest[..12.min(digest.len())]
        );
    }

    let mut tiers: BTreeMap<&str, usize> = BTreeMap::new();
    for state in &report.states {
        *tiers.entry(tier_name(state.account.tier)).or_default() += 1;
    }
    let _ = writeln!(out, "\nPortfolio by tier");
    for (tier, count) in &tiers {
        let _ = writeln!(out, "  {tier:<16} {count:>7}");
    }

    let health: Vec<(&AccountState, f64)> = report
        .states
        .iter()
        .filter_map(|s| s.scores.get("health").map(|h| (s, h.card.value)))
        .collect();
    let _ = writeln!(out, "\nAccounts per health band");
    for (band, rag) in [
        ("critical", "red"),
        ("declining", "red"),
        ("stable", "yellow"),
        ("optimal", "green"),
    ] {
        let count = report
            .states
            .iter()
            .filter(|s| s.scores.get("health").is_some_and(|h| h.card.band == band))
            .count();
        let share = 100.0 * count as f64 / health.len().max(1) as f64;
        let _ = writeln!(out, "  {band:<10} {rag:<7} {count:>7}  {share:5.1}%");
    }
    let stale = report
        .states
        .iter()
        .filter(|s| s.scores.values().any(|v| v.stale))
        .count();
    if stale > 0 {
        let _ = writeln!(
            out,
            "  ({stale} accounts hold a stale score after a failed scorer)"
        );
    }

    let mut leads: BTreeMap<String, usize> = BTreeMap::new();
    for state in &report.states {
        if let Some(lead) = state.scores.get("lead") {
            *leads.entry(lead.card.band.to_string()).or_default() += 1;
        }
    }
    if !leads.is_empty() {
        let _ = writeln!(out, "\nSales leads");
        for band in ["hot", "warm", "cold"] {
            let _ = writeln!(
                out,
                "  {band:<10} {:>7}",
                leads.get(band).copied().unwrap_or(0)
            );
        }
    }

    let mut at_risk = health.clone();
    at_risk.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then_with(|| a.0.account.id.cmp(&b.0.account.id))
    });
    let _ = writeln!(
        out,
        "\nMost at-risk accounts (what put them there: points lost per factor)"
    );
    for (state, value) in at_risk.iter().take(10) {
        let account = &state.account;
        let Some(score) = state.scores.get("health") else {
            continue;
        };
        let _ = writeln!(
            out,
            "  {:<11} {:<28} {:<14} {:<18} health {value:5.1} {}  ARR {}",
            account.id,
            account.name,
            tier_name(account.tier),
            industry_name(account.industry),
            score.card.band,
            account.arr
        );
        let mut lost: Vec<_> = score
            .card
            .factors
            .iter()
            .map(|f| (f.weight * (100.0 - f.value), f))
            .filter(|(points, _)| *points >= 1.0)
            .collect();
        lost.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (points, factor) in lost.iter().take(3) {
            let _ = writeln!(
                out,
                "      -{points:4.1}  {:<15} {}",
                factor.name, factor.note
            );
        }
    }

    let _ = writeln!(
        out,
        "\nSignals                      acted  suppressed  not acted on"
    );
    for (name, (acted, suppressed, skipped)) in &report.signals {
        let _ = writeln!(
            out,
            "  {name:<24} {acted:>8} {suppressed:>11} {skipped:>15}"
        );
    }
    let _ = writeln!(out, "\nIntents by kind and level");
    for (kind, count) in &report.intents {
        let _ = writeln!(out, "  {kind:<24} {count:>8}");
    }

    let _ = writeln!(
        out,
        "\nPlugin calls                     calls   faults  errors  mean fuel"
    );
    for (plugin, stats) in &report.plugins {
        let _ = writeln!(
            out,
            "  {plugin:<28} {:>9} {:>8} {:>7} {:>10}",
            stats.calls,
            stats.faults,
            stats.errors,
            stats.fuel / stats.calls.max(1)
        );
    }
    if !report.rejected.is_empty() {
        let _ = writeln!(
            out,
            "\n{} events rejected; first: {}",
            report.rejected.len(),
            report.rejected[0]
        );
    }

    let seconds = report.elapsed.as_secs_f64().max(1e-9);
    let calls: u64 = report.plugins.values().map(|s| s.calls).sum();
    let rate = report.events as f64 / seconds;
    let _ = writeln!(
        out,
        "\nThroughput: {} events in {:.2} s on {} threads = {:.0} events/s ({:.0} per thread), {:.1} µs per event, {:.0} plugin calls/s",
        report.events,
        seconds,
        report.threads,
        rate,
        rate / report.threads as f64,
        1e6 / rate * report.threads as f64,
        calls as f64 / seconds
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_portfolio() {
        let a = generate_portfolio(20, 7);
        let b = generate_portfolio(20, 7);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.account, y.account);
            assert_eq!(x.events, y.events);
        }
        let c = generate_portfolio(20, 8);
        assert_ne!(a[0].events, c[0].events);
    }

    #[test]
    fn generated_events_are_in_time_order_for_their_account_with_json_payloads() {
        for generated in generate_portfolio(50, 1) {
            assert!(
                generated
                    .events
                    .windows(2)
                    .all(|w| w[0].occurred_at <= w[1].occurred_at)
            );
            for event in &generated.events {
                assert_eq!(event.account_id, generated.account.id);
                assert!(
                    serde_json::from_str::<serde_json::Value>(&event.payload)
                        .unwrap()
                        .is_object()
                );
                assert!(event.occurred_at <= DEMO_NOW);
            }
            assert!(generated.events.iter().any(|e| e.kind == "usage.weekly"));
        }
    }

    #[test]
    fn the_portfolio_spans_every_tier() {
        let portfolio = generate_portfolio(200, 3);
        for tier in [Tier::Enterprise, Tier::MidMarket, Tier::SmallBusiness] {
            assert!(portfolio.iter().any(|g| g.account.tier == tier));
        }
    }
}
