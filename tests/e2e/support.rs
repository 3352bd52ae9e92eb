//! Shared helpers: the runtime, the components, accounts and events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use vigil_host::history::{DAY_MS, MetricHistory};
use vigil_host::pipeline::{AccountState, Pipeline, PluginSet};
use vigil_host::runtime::bindings::types::{Account, Context, Event, Industry, Tier};
use vigil_host::runtime::{
    CallInput, ComponentReport, InstanceMode, Limits, LoadError, Plugin, Runtime,
};
use vigil_host::standard::STANDARD_PLUGINS;

/// 2026-06-01T00:00:00Z.
pub const NOW: i64 = 1_780_272_000_000;

pub fn runtime() -> Runtime {
    Runtime::new(Limits::default()).expect("runtime starts")
}

/// The bytes of a test component from `tests/components`.
pub fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("VIGIL_TEST_COMPONENTS"))
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bytes of a test component built without WASI (`tests/build.rs`
/// builds `panicker` that way too).
pub fn component_without_wasi(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("VIGIL_TEST_COMPONENTS_NO_WASI"))
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that a component loads and imports nothing but the vigil
/// contract (no `wasi:*`), as one built without WASI does; `what` names it.
pub fn assert_imports_only_the_contract(report: &ComponentReport, what: &str) {
    assert!(report.loads(), "{what}: {:?}", report.refused);
    assert!(
        report
            .imports
            .iter()
            .all(|i| i.starts_with("vigil:plugin/")),
        "{what} imports only the contract: {:?}",
        report.imports
    );
}

/// The bytes of a standard plugin.
pub fn standard(name: &str) -> &'static [u8] {
    STANDARD_PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
        .unwrap_or_else(|| panic!("no standard plugin {name}"))
}

pub fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Plugin, LoadError> {
    runtime.load(bytes, BTreeMap::new(), InstanceMode::Warm)
}

pub fn account(id: &str, tier: Tier, industry: Industry, seats: u32, active: u32) -> Account {
    Account {
        id: id.into(),
        name: format!("{id} Inc"),
        tier,
        industry,
        licensed_seats: seats,
        active_users: active,
        arr: u64::from(seats) * 600,
        contract_start: Some(NOW - 400 * DAY_MS),
        renewal_date: Some(NOW + 200 * DAY_MS),
        attributes: vec![],
    }
}

pub fn event(account: &str, n: usize, kind: &str, at: i64, payload: serde_json::Value) -> Event {
    Event {
        id: format!("{account}-{n}"),
        account_id: account.into(),
        kind: kind.into(),
        occurred_at: at,
        payload: payload.to_string(),
    }
}

pub fn context(account: Account, kind: &str) -> Context {
    Context {
        event: event(&account.id, 0, kind, NOW, serde_json::json!({})),
        account,
        now: NOW,
        scores: vec![],
    }
}

pub fn input(history: &mut MetricHistory) -> CallInput<'_> {
    CallInput {
        now: NOW,
        seed: [7; 32],
        history,
    }
}

/// A pipeline over the six standard plugins.
pub fn standard_pipeline(runtime: &Runtime, mode: InstanceMode) -> Pipeline {
    let plugins = STANDARD_PLUGINS.iter().map(|(_, bytes)| {
        Arc::new(
            runtime
                .load(bytes, BTreeMap::new(), mode)
                .expect("standard plugin loads"),
        )
    });
    Pipeline::new(PluginSet::new(plugins))
}

/// Twelve weeks of usage for an account: `active` users and `logins`
/// logins per week, linearly from the first to the second value.
pub fn usage_history(account: &str, active: (f64, f64), logins: (f64, f64)) -> Vec<Event> {
    (0..12)
        .map(|week| {
            let t = week as f64 / 11.0;
            let at = NOW - (11 - week) * 7 * DAY_MS;
            let active = (active.0 + (active.1 - active.0) * t).round();
            let logins = (logins.0 + (logins.1 - logins.0) * t).round();
            event(
                account,
                week as usize,
                "usage.weekly",
                at,
                serde_json::json!({"active_users": active, "logins": logins}),
            )
        })
        .collect()
}

/// Runs `events` through `pipeline` for `account`, returning the state and
/// every evaluation.
pub fn run_events(
    pipeline: &Pipeline,
    account: Account,
    events: &[Event],
) -> (AccountState, Vec<vigil_host::pipeline::Evaluation>) {
    let mut state = AccountState::new(account);
    let evaluations = events
        .iter()
        .map(|e| pipeline.process(&mut state, e).expect("event accepted"))
        .collect();
    (state, evaluations)
}
