//! The `vigil` binary, as an operator runs it. These tests live with the
//! binary's package so that cargo builds the binary for them.

// Test code fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn plugin_check_prints_world_contract_and_describe_for_a_plugin_it_loads() {
    let dir = tempfile::tempdir().unwrap();
    let export = vigil()
        .args(["plugin", "export-standard"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(export.status.success());
    let output = vigil()
        .args(["plugin", "check"])
        .arg(dir.path().join("health-score.wasm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("world     scorer"), "{stdout}");
    assert!(stdout.contains("contract  vigil:plugin@0.1.0"), "{stdout}");
    assert!(stdout.contains("name          health-score"), "{stdout}");
    assert!(stdout.contains("vigil:plugin/history@0.1.0"), "{stdout}");
    assert!(
        stdout.contains("OK: the host loads this plugin"),
        "{stdout}"
    );
}

#[test]
fn plugin_check_exits_non_zero_with_the_reason_for_a_refused_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("garbage.wasm");
    std::fs::write(&file, b"\0asm not a component").unwrap();
    let output = vigil()
        .args(["plugin", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.contains("REFUSED: not a valid WebAssembly component"),
        "{stdout}"
    );
}

#[test]
fn demo_runs_a_small_portfolio_and_prints_bands_risks_intents_and_throughput() {
    let output = vigil()
        .args(["demo", "--accounts", "60", "--threads", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for section in [
        "vigil demo: 60 accounts",
        "Accounts per health band",
        "Most at-risk accounts",
        "Intents by kind and level",
        "Throughput:",
    ] {
        assert!(stdout.contains(section), "missing {section}:\n{stdout}");
    }
    assert!(!stdout.contains("events rejected"), "{stdout}");
}

#[test]
fn audit_verify_exits_zero_on_an_intact_chain_and_one_naming_the_entry_after_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = vigil_host::store::Store::connect(&url).await.unwrap();
        for n in 1..=3 {
            store
                .audit(vigil_host::store::AuditEntry {
                    at: n,
                    actor: "cli-test".into(),
                    action: "test".into(),
                    resource: format!("thing:{n}"),
                    origin: "test".into(),
                    success: true,
                    details: serde_json::json!({}),
                })
                .await
                .unwrap();
        }
    });
    let intact = vigil()
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 3 entries"));

    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_log SET resource = 'thing:forged' WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let broken = vigil()
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broken.stdout).contains("broken at entry 2"),
        "{}",
        String::from_utf8_lossy(&broken.stdout)
    );
}
