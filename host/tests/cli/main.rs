//! The `vigil` binary, as an operator runs it. These tests live with the
//! binary's package so that cargo builds the binary for them.

// Test code fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hosts;

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
    assert!(stdout.contains("contract  vigil:plugin@0.7.0"), "{stdout}");
    assert!(stdout.contains("name          health-score"), "{stdout}");
    assert!(
        stdout.contains("windows       logins 30d ending 0d ago, logins 30d ending 30d ago,"),
        "{stdout}"
    );
    assert!(stdout.contains("vigil:plugin/history@0.7.0"), "{stdout}");
    // The memory an instance starts with, against the default cap.
    assert!(
        stdout.contains("memory    1 memory starting at ")
            && stdout.contains(" KiB (capped at 65536 KiB an instance)"),
        "{stdout}"
    );
    // A scorer lists the score it declares: its bands and factors.
    assert!(stdout.contains("score         health"), "{stdout}");
    assert!(
        stdout.contains("bands       critical, declining, stable, optimal"),
        "{stdout}"
    );
    assert!(
        stdout.contains("factors     usage, login-trend, support-load, sentiment, payment-health"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK: the host loads this plugin"),
        "{stdout}"
    );
    // A condition lists the policy tags it declares.
    let output = vigil()
        .args(["plugin", "check"])
        .arg(dir.path().join("tier-conditions.wasm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("policy tags   monitoring-24x7, dedicated-csm,"),
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

/// A plain HTTP/1.1 exchange over loopback: status and body.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(key) = key {
        request.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `vigil serve` on `port` over `data_dir` and waits until it is ready.
fn start_server(data_dir: &std::path::Path, port: u16) -> std::process::Child {
    let mut child = vigil()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/readyz", None, None).0 == 200
        {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "vigil serve did not become ready on port {port}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn create_key(data_dir: &std::path::Path, role: &str) -> String {
    let output = vigil()
        .args(["keys", "create", "--role", role])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The key alone on stdout, so `KEY=$(vigil keys create …)` works.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let key = stdout.trim().to_string();
    assert!(key.starts_with("vgl_"), "{key}");
    key
}

#[test]
fn keys_create_prints_the_key_alone_and_refuses_an_unknown_role() {
    let dir = tempfile::tempdir().unwrap();
    create_key(dir.path(), "viewer");
    let output = vigil()
        .args(["keys", "create", "--role", "root", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("root"));
}

#[test]
fn every_acknowledged_event_survives_a_kill_9_and_is_evaluated_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "operator");
    let port = free_port();
    let mut server = start_server(dir.path(), port);
    let customer =
        r#"{"name":"Acme","tier":"enterprise","industry":"healthcare","licensed_seats":200}"#;
    let (status, body) = http(
        port,
        "PUT",
        "/api/v1/customers/acme",
        Some(&key),
        Some(customer),
    );
    assert_eq!(status, 200, "{body}");

    let mut acknowledged = Vec::new();
    for batch in 0..20 {
        let events: Vec<String> = (0..50)
            .map(|n| {
                format!(
                    r#"{{"id":"e-{batch}-{n}","account_id":"acme","kind":"usage.daily","occurred_at":"2026-06-01T10:{:02}:{:02}Z","payload":{{"active_users":{n},"logins":3}}}}"#,
                    batch, n
                )
            })
            .collect();
        let (status, body) = http(
            port,
            "POST",
            "/api/v1/events",
            Some(&key),
            Some(&format!("[{}]", events.join(","))),
        );
        assert_eq!(status, 202, "{body}");
        acknowledged.extend((0..50).map(|n| format!("e-{batch}-{n}")));
    }
    // No goodbye: SIGKILL, mid-evaluation most likely.
    server.kill().unwrap();
    server.wait().unwrap();

    let server = start_server(dir.path(), port);
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(vigil_host::store::Store::connect(&url))
        .unwrap();
    let stored: std::collections::BTreeSet<String> = runtime
        .block_on(store.events_for("acme"))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged event {id} is gone");
    }
    // The restarted host evaluates what the killed one had not.
    let mut left = i64::MAX;
    for _ in 0..300 {
        left = runtime.block_on(store.unevaluated_count()).unwrap();
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left, 0, "events left unevaluated after the restart");
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/customers/acme/health-score",
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{body}");

    // SIGTERM: a graceful stop.
    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let output = server.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("vigil stopped"));
    drop(store);
    let verify = vigil()
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
