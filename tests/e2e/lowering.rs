//! What the host lowers into a plugin — the context of a batch call, a
//! `history.window` answer and the declared windows sent with the batch —
//! reaches the plugin field for field, for every tier, industry,
//! optional date, attribute list and score the contract allows (the host
//! writes these records itself, one copy each, instead of through
//! wasmtime's field-by-field lowering).

use std::sync::Arc;

use vigil_host::history::MetricHistory;
use vigil_host::pipeline::{AccountState, Evaluation, Pipeline, PluginSet};
use vigil_host::runtime::Runtime;
use vigil_host::runtime::bindings::types::{Account, Attribute, Event, Industry, Tier};

use crate::support::*;

/// The reason the `context-echo` test trigger gives: the same text, built
/// from what the host holds.
fn echo_of(account: &Account, event: &Event, now: i64, evaluation: &Evaluation) -> String {
    let attributes: Vec<String> = account
        .attributes
        .iter()
        .map(|a| format!("{:?}={:?}", a.key, a.value))
        .collect();
    let scores: Vec<String> = evaluation
        .scores
        .iter()
        .filter(|s| !s.stale)
        .map(|s| {
            format!(
                "{:?}:{}:{:?}:{}",
                s.card.name, s.card.value, s.card.band, s.card.rag as u8
            )
        })
        .collect();
    format!(
        "account {:?} {:?} tier={} industry={} seats={} active={} arr={} start={:?} renewal={:?} \
         attributes=[{}] | event {:?} {:?} {:?} at={} payload={:?} | now={} | scores=[{}] | ",
        account.id,
        account.name,
        account.tier as u8,
        account.industry as u8,
        account.licensed_seats,
        account.active_users,
        account.arr,
        account.contract_start,
        account.renewal_date,
        attributes.join(","),
        event.id,
        event.account_id,
        event.kind,
        event.occurred_at,
        event.payload,
        now,
        scores.join(","),
    )
}

/// The window part of the echo: the plugin's two declared windows (the
/// last 30 days of logins and the 30 before), read through `window()`, and
/// the last 30 days again, asked of the `history` import.
fn window_echo(history: &MetricHistory, now: i64) -> String {
    let recent = history.window("logins", now, 30, 0);
    let earlier = history.window("logins", now, 30, 30);
    [("logins", recent), ("earlier", earlier), ("asked", recent)]
        .iter()
        .map(|(name, w)| {
            format!(
                "{name} count={} sum={} min={} max={} first={} last={}",
                w.count, w.sum, w.min, w.max, w.first, w.last
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Accounts covering every tier and industry, dates set and unset, empty
/// and non-ASCII strings, and from no attributes to more than the host
/// copies in one go.
fn varied_accounts() -> Vec<Account> {
    let tiers = [Tier::Enterprise, Tier::MidMarket, Tier::SmallBusiness];
    let industries = [
        Industry::Healthcare,
        Industry::FinancialServices,
        Industry::ECommerce,
        Industry::Technology,
        Industry::Manufacturing,
        Industry::Education,
        Industry::Other,
    ];
    industries
        .iter()
        .enumerate()
        .map(|(i, industry)| {
            let mut account = account(
                &format!("acct-{i}"),
                tiers[i % tiers.len()],
                *industry,
                10 + u32::try_from(i).unwrap(),
                3,
            );
            account.name = if i == 0 {
                String::new()
            } else {
                format!("Zürich Ärzte {i} \"GmbH\"")
            };
            account.arr = u64::MAX - u64::try_from(i).unwrap();
            account.contract_start = (i % 2 == 0).then_some(NOW - 400 * 86_400_000 - 1);
            account.renewal_date = (i % 3 != 0).then_some(-5 - i64::try_from(i).unwrap());
            account.attributes = (0..i * 4)
                .map(|k| Attribute {
                    key: format!("key-{k}"),
                    value: if k == 1 {
                        String::new()
                    } else {
                        format!("välue {k} ✓")
                    },
                })
                .collect();
            account
        })
        .collect()
}

/// One `usage.daily` event per account, each a millisecond after the one
/// before, from `NOW`; the `n`th account's payload is `payload(n)`.
fn daily_events(accounts: &[Account], payload: impl Fn(usize) -> serde_json::Value) -> Vec<Event> {
    accounts
        .iter()
        .enumerate()
        .map(|(n, account)| {
            event(
                &account.id,
                1,
                "usage.daily",
                NOW + i64::try_from(n).unwrap(),
                payload(n),
            )
        })
        .collect()
}

/// `events` (one per state, in order) evaluated in one batch.
fn evaluated_as_a_batch(
    pipeline: &Pipeline,
    states: &mut [AccountState],
    events: &[Event],
) -> Vec<Evaluation> {
    let mut batch: Vec<(&mut AccountState, &Event)> = states.iter_mut().zip(events).collect();
    pipeline
        .process_batch(&mut batch)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// The echo signal's reason in an evaluation.
fn echoed(evaluation: &Evaluation) -> &str {
    &evaluation
        .signals
        .iter()
        .find(|record| record.signal.name == "context.echo")
        .expect("the echo trigger raised its signal")
        .signal
        .reason
}

/// The standard health score and the `context-echo` trigger after it, so
/// that the echoed contexts carry a score.
fn scored_echo(runtime: &Runtime) -> Pipeline {
    let echo = Arc::new(load(runtime, &component("context-echo")).unwrap());
    let scorer = Arc::new(load(runtime, standard("health-score")).unwrap());
    Pipeline::new(PluginSet::new([scorer, echo]))
}

#[test]
fn every_field_of_a_batch_context_and_of_a_window_reaches_the_plugin_as_the_host_holds_it() {
    let runtime = runtime();
    let pipeline = scored_echo(&runtime);

    let accounts = varied_accounts();
    let mut states: Vec<AccountState> = accounts.iter().cloned().map(AccountState::new).collect();
    // Earlier logins for every account: one 40 days back, in the window
    // before the last 30 days, and one 3 days back, so the last 30 days
    // hold two samples and the two declared windows differ.
    for (n, state) in states.iter_mut().enumerate() {
        for (seq, days_back, logins) in [(2, 40, 11.0), (0, 3, 2.5)] {
            let earlier = event(
                &state.account.id,
                seq,
                "usage.daily",
                NOW - days_back * 86_400_000,
                serde_json::json!({ "logins": logins + n as f64 }),
            );
            pipeline.process(state, &earlier).unwrap();
        }
    }
    let events = daily_events(
        &accounts,
        |n| serde_json::json!({ "logins": 7 * n, "note": "ünïcode \u{1F600}" }),
    );

    let evaluations = evaluated_as_a_batch(&pipeline, &mut states, &events);

    for ((state, event), evaluation) in states.iter().zip(&events).zip(&evaluations) {
        let window = state.history.window("logins", event.occurred_at, 30, 0);
        assert_eq!(window.count, 2, "both recent logins are in the window");
        let earlier = state.history.window("logins", event.occurred_at, 30, 30);
        assert_eq!(
            earlier.count, 1,
            "the login 40 days back is in the earlier window"
        );
        let expected = echo_of(&state.account, event, event.occurred_at, evaluation)
            + &window_echo(&state.history, event.occurred_at);
        assert_eq!(echoed(evaluation), expected, "account {}", state.account.id);
    }
}

#[test]
fn a_context_evaluated_alone_reaches_the_plugin_as_in_a_batch() {
    let runtime = runtime();
    let echo = Arc::new(load(&runtime, &component("context-echo")).unwrap());
    let pipeline = Pipeline::new(PluginSet::new([echo]));
    let account = varied_accounts().pop().unwrap();
    assert!(account.attributes.len() > 16);
    let mut state = AccountState::new(account);
    let event = event(
        &state.account.id,
        1,
        "support.ticket.opened",
        NOW,
        serde_json::json!({}),
    );

    let evaluation = pipeline.process(&mut state, &event).unwrap();

    let window = state.history.window("logins", NOW, 30, 0);
    assert_eq!(window.count, 0);
    let expected =
        echo_of(&state.account, &event, NOW, &evaluation) + &window_echo(&state.history, NOW);
    assert_eq!(echoed(&evaluation), expected);
}

#[test]
fn the_items_of_a_batch_called_again_after_one_traps_get_their_own_contexts() {
    let runtime = runtime();
    let pipeline = scored_echo(&runtime);
    // The echo traps on an account in the middle of the batch, so the
    // items before and after it are called again, each part on its own;
    // the contexts were packed once, for the whole batch.
    let mut accounts = varied_accounts();
    let mut boom = accounts[2].clone();
    boom.id = "echo-boom".into();
    accounts.insert(3, boom);
    let mut states: Vec<AccountState> = accounts.iter().cloned().map(AccountState::new).collect();
    let events = daily_events(&accounts, |n| serde_json::json!({ "logins": 3 * n }));

    let evaluations = evaluated_as_a_batch(&pipeline, &mut states, &events);

    for ((state, event), evaluation) in states.iter().zip(&events).zip(&evaluations) {
        if state.account.id == "echo-boom" {
            assert!(
                evaluation.invocations.iter().any(|record| matches!(
                    &record.outcome,
                    vigil_host::runtime::Outcome::Trap { reason } if reason.contains("echo-boom is not echoed")
                )),
                "{:?}",
                evaluation.invocations
            );
            assert!(evaluation.signals.is_empty());
            continue;
        }
        let expected = echo_of(&state.account, event, event.occurred_at, evaluation)
            + &window_echo(&state.history, event.occurred_at);
        assert_eq!(echoed(evaluation), expected, "account {}", state.account.id);
    }
}
