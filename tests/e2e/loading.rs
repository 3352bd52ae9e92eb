//! What the host refuses at load, and what it reports about what it loads.

use vigil_host::runtime::LoadError;

use crate::support::{assert_imports_only_the_contract, component, load, runtime, standard};

/// The refused imports of a component, as (import, reason).
fn refused_imports(name: &str) -> Vec<(String, String)> {
    match load(&runtime(), &component(name)) {
        Err(LoadError::ForbiddenImports { imports }) => {
            imports.into_iter().map(|i| (i.import, i.reason)).collect()
        }
        other => panic!("{name}: expected forbidden imports, got {other:?}"),
    }
}

#[test]
fn a_component_reading_files_is_refused_naming_its_filesystem_import() {
    let refused = refused_imports("file-reader");
    assert!(
        refused
            .iter()
            .any(|(import, reason)| import.starts_with("wasi:filesystem/")
                && reason.contains("file system")),
        "{refused:?}"
    );
}

#[test]
fn a_component_opening_sockets_is_refused_naming_its_sockets_import() {
    let refused = refused_imports("socket-user");
    assert!(
        refused
            .iter()
            .any(|(import, reason)| import.starts_with("wasi:sockets/")
                && reason.contains("network")),
        "{refused:?}"
    );
}

#[test]
fn a_component_with_an_unknown_import_is_refused_naming_it() {
    let error = load(&runtime(), &component("unknown-import")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("acme:spy/exfiltrate"), "{message}");
}

#[test]
fn a_component_targeting_no_vigil_world_is_refused_listing_its_exports() {
    let error = load(&runtime(), &component("not-a-plugin")).unwrap_err();
    assert!(matches!(error, LoadError::NoVigilWorld { .. }), "{error:?}");
    assert!(error.to_string().contains("hello"), "{error}");
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let error = load(&runtime(), b"\0asm but not really").unwrap_err();
    assert!(matches!(error, LoadError::NotAComponent(_)), "{error:?}");
}

#[test]
fn inspecting_a_standard_plugin_reports_world_contract_describe_and_imports() {
    let report = runtime().inspect(standard("health-score"));
    assert!(report.loads(), "{:?}", report.refused);
    assert_eq!(report.world.as_deref(), Some("scorer"));
    assert_eq!(report.contract.as_deref(), Some("0.7.0"));
    // The card's names are declared once, as contract 0.6 has it.
    assert_eq!(report.scores.len(), 1);
    assert_eq!(report.scores[0].name, "health");
    assert_eq!(
        report.scores[0].bands,
        ["critical", "declining", "stable", "optimal"]
    );
    assert_eq!(
        report.scores[0].factors,
        [
            "usage",
            "login-trend",
            "support-load",
            "sentiment",
            "payment-health"
        ]
    );
    let info = report.info.unwrap();
    assert_eq!(info.name, "health-score");
    assert_eq!(info.version, "0.1.0");
    assert!(
        report
            .imports
            .iter()
            .any(|i| i == "vigil:plugin/history@0.7.0"),
        "{:?}",
        report.imports
    );
    assert!(
        report
            .exports
            .iter()
            .any(|e| e == "vigil:plugin/scoring@0.7.0")
    );
}

#[test]
fn inspecting_a_refused_component_still_lists_its_imports() {
    let report = runtime().inspect(&component("file-reader"));
    assert!(!report.loads());
    assert!(
        report
            .imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/"))
    );
    assert!(report.refused.unwrap().contains("wasi:filesystem/"));
}

#[test]
fn the_standard_plugins_import_only_the_contract() {
    let runtime = runtime();
    for (name, bytes) in vigil_host::standard::STANDARD_PLUGINS {
        assert_imports_only_the_contract(&runtime.inspect(bytes), name);
    }
}

#[test]
fn every_standard_plugin_loads_with_the_kind_it_declares() {
    let runtime = runtime();
    for (name, bytes) in vigil_host::standard::STANDARD_PLUGINS {
        let plugin = load(&runtime, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plugin.name(), *name);
        assert_eq!(plugin.contract(), vigil_host::runtime::LATEST_CONTRACT);
    }
}

#[test]
fn a_plugin_built_without_fast_alloc_allocates_with_its_own_allocator() {
    use vigil_host::history::MetricHistory;
    use vigil_host::runtime::bindings::types::{Industry, Tier};

    use crate::support::{account, context, input};

    let plugin = load(&runtime(), &component("own-allocator")).unwrap();
    let mut history = MetricHistory::default();
    let ctx = context(
        account("acme", Tier::MidMarket, Industry::Other, 10, 5),
        "test",
    );
    let card = plugin.score(input(&mut history), &ctx).output.unwrap();
    let served = card
        .factors
        .iter()
        .find(|f| f.name == "allocations")
        .unwrap()
        .raw;
    // Taking in the call's context alone allocates in the guest, so a
    // plugin whose allocator is its own has served some by now.
    assert!(served > 0.0, "{card:?}");
}
