//! The plugin lifecycle and several hosts on one store: deploys through
//! the API and the watched directory, refusals, swaps under load, rollback,
//! the circuit breaker's quarantine, hosts sharing partitions, lease
//! fencing, and registry changes reaching every host with or without a
//! notification.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_host::api::HostOptions;
use vigil_host::lifecycle::{LifecycleConfig, PluginSource};
use vigil_host::service::HostConfig;
use vigil_host::store::{
    AuditEntry, EvaluationFence, EvaluationWrite, NewEvent, PARTITIONS, Store, StoreError, TickRun,
    partition_of,
};

use crate::api::{TestApp, app_with, customer, send, sqlite_app};
use crate::store::fresh_postgres;
use crate::support::{component, standard};

/// `bytes` with a custom section appended: the same plugin, another digest
/// (what a rebuild with a changed comment gives).
pub fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"vigil-test-variant";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Uploads a component with the operator key.
async fn deploy(app: &TestApp, bytes: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/plugins")
        .header("content-type", "application/wasm")
        .header("authorization", format!("Bearer {}", app.operator))
        .body(Body::from(bytes))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The digest this host serves for plugin `name`.
async fn serving(app: &TestApp, name: &str) -> Option<String> {
    let (status, _, detail) = send(app, "GET", &format!("/api/v1/plugins/{name}"), None).await;
    if status != StatusCode::OK {
        return None;
    }
    detail["serving"]["digest"].as_str().map(str::to_string)
}

/// Evaluates `check` (which may `.await`) every 50 ms until it holds,
/// for up to `seconds`.
macro_rules! eventually {
    ($seconds:expr, $what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs($seconds);
        loop {
            if $check {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{} did not happen within {} s", $what, $seconds);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

fn sha256(bytes: &[u8]) -> String {
    vigil_host::runtime::digest(bytes)
}

async fn put_acme(app: &TestApp) {
    let (status, _, body) = send(app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Posts one usage event for `account` and waits for its evaluation; the
/// health score served afterwards.
async fn score_after_event(app: &TestApp, account: &str, n: usize, payload: Value) -> Value {
    let body = json!({
        "account_id": account,
        "kind": "usage.daily",
        "occurred_at": format!("2026-06-01T10:00:{:02}Z", n % 60),
        "payload": payload,
    });
    let (status, _, answer) = send(
        app,
        "POST",
        "/api/v1/events?wait=evaluated",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, _, score) = send(
        app,
        "GET",
        &format!("/api/v1/customers/{account}/health-score"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{score}");
    score
}

async fn deploy_and_roll_back(app: &TestApp) {
    put_acme(app).await;
    let standard_digest = sha256(standard("health-score"));
    assert_eq!(
        serving(app, "health-score").await.as_deref(),
        Some(standard_digest.as_str())
    );

    let next = variant(standard("health-score"), "next");
    let (status, answer) = deploy(app, next.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["deployed"]["state"], "active");
    assert_eq!(answer["deployed"]["digest"], sha256(&next));
    assert_eq!(answer["replaced"]["digest"], standard_digest);
    // Served at once on this host, and used by the next evaluation.
    assert_eq!(serving(app, "health-score").await, Some(sha256(&next)));
    let score = score_after_event(app, "acme", 1, json!({"active_users": 150})).await;
    assert_eq!(score["plugin"]["digest"], sha256(&next), "{score}");

    // The same component again changes nothing.
    let (status, answer) = deploy(app, next.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["already_active"], true);

    let (status, _, detail) = send(app, "GET", "/api/v1/plugins/health-score", None).await;
    assert_eq!(status, StatusCode::OK);
    let versions = detail["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{detail}");
    assert_eq!(versions[0]["digest"], sha256(&next));
    assert!(
        versions[0]["deployed_by"]
            .as_str()
            .unwrap()
            .starts_with("key:")
    );
    assert!(
        versions[0]["stats"]["invocations"].as_u64().unwrap() >= 1,
        "{detail}"
    );
    assert!(
        versions[0]["stats"]["latency_p99_us"].as_u64().is_some(),
        "{detail}"
    );
    assert_eq!(versions[1]["state"], "inactive");

    // Roll back to the version before.
    let (status, _, active) = send(
        app,
        "POST",
        "/api/v1/plugins/health-score/rollback",
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    assert_eq!(active["digest"], standard_digest);
    assert_eq!(
        serving(app, "health-score").await,
        Some(standard_digest.clone())
    );
    let score = score_after_event(app, "acme", 2, json!({"active_users": 150})).await;
    assert_eq!(score["plugin"]["digest"], standard_digest, "{score}");

    // And forward again, by digest.
    let (status, _, active) = send(
        app,
        "POST",
        "/api/v1/plugins/health-score/rollback",
        Some(json!({"to": sha256(&next)}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    assert_eq!(serving(app, "health-score").await, Some(sha256(&next)));

    // Unknown plugins and versions: 404.
    let (status, _, problem) = send(
        app,
        "POST",
        "/api/v1/plugins/health-score/rollback",
        Some(json!({"to": "7.7.7"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _, _) = send(app, "GET", "/api/v1/plugins/no-such-plugin", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The registry's history is in the audit chain.
    let (_, _, page) = send(app, "GET", "/api/v1/audit?limit=500", None).await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"plugin.deploy"), "{actions:?}");
    assert!(actions.contains(&"plugin.rollback"), "{actions:?}");
}

#[tokio::test]
async fn a_deployed_version_serves_at_once_and_a_rollback_restores_the_one_before_on_sqlite() {
    let (_dir, app) = sqlite_app().await;
    deploy_and_roll_back(&app).await;
}

#[tokio::test]
async fn a_deployed_version_serves_at_once_and_a_rollback_restores_the_one_before_on_postgres() {
    let url = fresh_postgres().await;
    let app = app_with(&url, HostOptions::default()).await;
    deploy_and_roll_back(&app).await;
}

#[tokio::test]
async fn components_that_are_not_plugins_or_fault_in_their_canary_are_refused_and_the_active_version_keeps_serving()
 {
    let (_dir, app) = sqlite_app().await;
    let before = app.state.lifecycle().serving();

    let (status, problem) = deploy(&app, component("not-a-plugin")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no vigil world"),
        "{problem}"
    );
    let (status, problem) = deploy(&app, component("file-reader")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("wasi:filesystem"),
        "{problem}"
    );
    // Spins for ever on every event: the canary run stops it.
    let (status, problem) = deploy(&app, component("spin-forever")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("canary"),
        "{problem}"
    );
    let (status, problem) = deploy(&app, b"not wasm at all".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, problem) = deploy(&app, Vec::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // A viewer cannot deploy.
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/plugins")
        .header("authorization", format!("Bearer {}", app.viewer))
        .body(Body::from(standard("health-score").to_vec()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    assert_eq!(app.state.lifecycle().serving(), before);
    let (_, _, list) = send(&app, "GET", "/api/v1/plugins", None).await;
    assert_eq!(list["plugins"].as_array().unwrap().len(), 6, "{list}");
    let (_, _, page) = send(&app, "GET", "/api/v1/audit?limit=500", None).await;
    let refused = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plugin.refused" && e["success"] == false)
        .count();
    assert_eq!(refused, 4, "{page}");
}

#[tokio::test]
async fn a_plugin_file_dropped_in_the_watched_directory_is_deployed_a_bad_one_refused_and_a_removed_one_unloaded()
 {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    for (name, bytes) in vigil_host::standard::STANDARD_PLUGINS {
        std::fs::write(plugins.path().join(format!("{name}.wasm")), bytes).unwrap();
    }
    let url = format!("sqlite://{}", data.path().join("vigil.db").display());
    let options = HostOptions {
        plugins: PluginSource::Directory(plugins.path().to_path_buf()),
        ..HostOptions::default()
    };
    let app = app_with(&url, options).await;
    put_acme(&app).await;
    assert_eq!(app.state.lifecycle().serving().len(), 6);

    // A new build of health-score, moved into place.
    let next = variant(standard("health-score"), "file");
    let staged = plugins.path().join(".health-score.wasm.tmp");
    std::fs::write(&staged, &next).unwrap();
    std::fs::rename(&staged, plugins.path().join("health-score.wasm")).unwrap();
    eventually!(10, "the changed file serving", {
        serving(&app, "health-score").await == Some(sha256(&next))
    });
    let (_, _, detail) = send(&app, "GET", "/api/v1/plugins/health-score", None).await;
    assert_eq!(detail["versions"][0]["origin"], "file:health-score.wasm");

    // A file that is not a plugin is refused; the others keep serving.
    std::fs::write(plugins.path().join("broken.wasm"), b"\0asm garbage").unwrap();
    eventually!(10, "the refusal audited", {
        let (_, _, page) = send(&app, "GET", "/api/v1/audit?limit=500", None).await;
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "plugin.refused" && e["origin"] == "file:broken.wasm")
    });
    assert_eq!(serving(&app, "health-score").await, Some(sha256(&next)));
    assert_eq!(app.state.lifecycle().serving().len(), 6);

    // Removing a file unloads its plugin.
    std::fs::remove_file(plugins.path().join("lead-score.wasm")).unwrap();
    eventually!(10, "lead-score unloaded", {
        !app.state
            .lifecycle()
            .serving()
            .iter()
            .any(|p| &*p.name == "lead-score")
    });
    let (_, _, detail) = send(&app, "GET", "/api/v1/plugins/lead-score", None).await;
    assert_eq!(detail["versions"][0]["state"], "inactive", "{detail}");
    assert_eq!(
        score_after_event(&app, "acme", 3, json!({})).await["account_id"],
        "acme"
    );
    app.state.shutdown().await;
}

#[tokio::test]
async fn every_event_is_evaluated_once_while_versions_are_swapped_under_load() {
    let url = fresh_postgres().await;
    let app = app_with(&url, HostOptions::default()).await;
    for n in 0..10 {
        let (status, _, body) = send(
            &app,
            "PUT",
            &format!("/api/v1/customers/acct-{n}"),
            Some(customer()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let poster = {
        let router = app.router.clone();
        let key = app.operator.clone();
        tokio::spawn(async move {
            let mut posted = 0;
            for batch in 0..60 {
                let events: Vec<Value> = (0..20)
                    .map(|n| {
                        json!({
                            "id": format!("load-{batch}-{n}"),
                            "account_id": format!("acct-{}", n % 10),
                            "kind": "usage.daily",
                            "occurred_at": "2026-06-01T10:00:00Z",
                            "payload": {"active_users": 50 + n, "logins": 3},
                        })
                    })
                    .collect();
                let request = Request::builder()
                    .method("POST")
                    .uri("/api/v1/events")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {key}"))
                    .body(Body::from(Value::Array(events).to_string()))
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::ACCEPTED);
                posted += 20;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            posted
        })
    };
    let mut digests = vec![sha256(standard("health-score"))];
    for swap in 0..6 {
        let next = variant(standard("health-score"), &format!("swap-{swap}"));
        let (status, answer) = deploy(&app, next.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        digests.push(sha256(&next));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let posted = poster.await.unwrap();
    assert_eq!(posted, 1200);
    let store = app.state.store().clone();
    eventually!(
        60,
        "every event evaluated",
        store.unevaluated_count().await.unwrap() == 0
    );

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let per_event: Vec<(String, i64)> = sqlx::query_as(
        "SELECT e.id, COUNT(s.seq) FROM events e LEFT JOIN scores s ON s.event_id = e.id AND s.name = 'health'
         GROUP BY e.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_event.len(), 1200);
    let wrong: Vec<_> = per_event.iter().filter(|(_, n)| *n != 1).collect();
    assert!(
        wrong.is_empty(),
        "events not scored exactly once: {wrong:?}"
    );
    let used: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT plugin_digest FROM scores WHERE name = 'health'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        used.len() >= 2,
        "the swaps were not seen by the evaluations: {used:?}"
    );
    assert!(used.iter().all(|d| digests.contains(d)), "{used:?}");
    app.state.shutdown().await;
}

fn host(id: &str, ttl_ms: u64) -> HostOptions {
    HostOptions {
        host: HostConfig {
            host_id: id.into(),
            lease_ttl: Duration::from_millis(ttl_ms),
            ..HostConfig::default()
        },
        lifecycle: LifecycleConfig {
            poll_every: Duration::from_millis(200),
            ..LifecycleConfig::default()
        },
        ..HostOptions::default()
    }
}

#[tokio::test]
async fn a_version_that_traps_after_deploy_is_quarantined_on_every_host_and_the_last_good_version_takes_over()
 {
    let url = fresh_postgres().await;
    let a = app_with(&url, host("host-a", 1000)).await;
    let b = app_with(&url, host("host-b", 1000)).await;
    put_acme(&a).await;
    let good = sha256(standard("health-score"));
    let bad_bytes = component("trap-after-deploy");
    let bad = sha256(&bad_bytes);

    // It passes its canary (fixture events score 60) and deploys.
    let (status, answer) = deploy(&a, bad_bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["deployed"]["version"], "9.0.0");
    eventually!(10, "host b serving the new version", {
        serving(&b, "health-score").await == Some(bad.clone())
    });
    let score = score_after_event(&a, "acme", 1, json!({"active_users": 100})).await;
    assert_eq!(score["value"], 60.0, "{score}");

    // Poisoned events: it traps on each, whichever host evaluates them.
    for n in 0..6 {
        let body = json!({
            "account_id": "acme",
            "kind": "usage.daily",
            "occurred_at": format!("2026-06-01T11:00:{n:02}Z"),
            "payload": {"poison": true},
        });
        let (status, _, answer) = send(
            &a,
            "POST",
            "/api/v1/events?wait=evaluated",
            Some(body.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    for app in [&a, &b] {
        eventually!(10, "the good version serving again", {
            serving(app, "health-score").await == Some(good.clone())
        });
    }
    let (_, _, detail) = send(&b, "GET", "/api/v1/plugins/health-score", None).await;
    let versions = detail["versions"].as_array().unwrap();
    let quarantined = versions.iter().find(|v| v["digest"] == bad).unwrap();
    assert_eq!(quarantined["state"], "quarantined", "{detail}");
    assert!(
        quarantined["state_reason"]
            .as_str()
            .unwrap()
            .contains("traps or limit hits"),
        "{detail}"
    );
    let active = versions.iter().find(|v| v["state"] == "active").unwrap();
    assert_eq!(active["digest"], good);

    // An alert in the outbox, and the quarantine in the audit chain.
    eventually!(10, "the quarantine alert delivered", {
        let (_, _, page) = send(&a, "GET", "/api/v1/actions?kind=notify", None).await;
        page["actions"].as_array().unwrap().iter().any(|action| {
            action["signal"] == "plugin.quarantined" && action["state"] == "delivered"
        })
    });
    let (_, _, page) = send(&a, "GET", "/api/v1/audit?limit=500", None).await;
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "plugin.quarantine" && e["origin"] == "circuit-breaker"),
        "{page}"
    );

    // A quarantined version cannot be rolled back to or deployed until
    // released.
    let (status, _, problem) = send(
        &a,
        "POST",
        "/api/v1/plugins/health-score/rollback",
        Some(json!({"to": "9.0.0"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _, released) = send(
        &a,
        "POST",
        "/api/v1/plugins/health-score/release",
        Some(json!({"version": "9.0.0"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["state"], "inactive");
    let (status, _, problem) = send(
        &a,
        "POST",
        "/api/v1/plugins/health-score/release",
        Some(json!({"version": "9.0.0"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _, active) = send(
        &a,
        "POST",
        "/api/v1/plugins/health-score/rollback",
        Some(json!({"to": "9.0.0"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    eventually!(10, "host b serving the released version", {
        serving(&b, "health-score").await == Some(bad.clone())
    });
    a.state.shutdown().await;
    b.state.shutdown().await;
}

#[tokio::test]
async fn hosts_share_the_partitions_evaluate_each_event_once_and_take_over_from_one_that_leaves() {
    let url = fresh_postgres().await;
    let a = app_with(&url, host("host-a", 600)).await;
    let b = app_with(&url, host("host-b", 600)).await;
    let half = usize::try_from(PARTITIONS / 2).unwrap();
    eventually!(10, "the partitions shared evenly", {
        a.state.service().owned_partitions().len() == half
            && b.state.service().owned_partitions().len() == half
    });
    let mut all: Vec<i32> = a.state.service().owned_partitions();
    all.extend(b.state.service().owned_partitions());
    all.sort_unstable();
    assert_eq!(all, (0..PARTITIONS).collect::<Vec<_>>());

    for n in 0..20 {
        let app = if n % 2 == 0 { &a } else { &b };
        let (status, _, body) = send(
            app,
            "PUT",
            &format!("/api/v1/customers/acct-{n}"),
            Some(customer()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    async fn post(app: &TestApp, round: usize) {
        let events: Vec<Value> = (0..20)
            .map(|n| {
                json!({
                    "id": format!("r{round}-{n}"),
                    "account_id": format!("acct-{n}"),
                    "kind": "usage.daily",
                    "occurred_at": "2026-06-01T10:00:00Z",
                    "payload": {"active_users": 40 + n},
                })
            })
            .collect();
        let body = Value::Array(events).to_string();
        let (status, _, answer) =
            send(app, "POST", "/api/v1/events?wait=evaluated", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    for round in 0..10 {
        post(if round % 2 == 0 { &a } else { &b }, round).await;
    }

    // Host a leaves; b takes every partition over and evaluates on.
    a.state.shutdown().await;
    eventually!(10, "host b holding every partition", {
        b.state.service().owned_partitions().len() == usize::try_from(PARTITIONS).unwrap()
    });
    for round in 10..14 {
        post(&b, round).await;
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let counts: Vec<i64> = sqlx::query_scalar(
        "SELECT COUNT(s.seq) FROM events e LEFT JOIN scores s ON s.event_id = e.id AND s.name = 'health'
         GROUP BY e.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(counts.len(), 280);
    assert!(counts.iter().all(|n| *n == 1), "{counts:?}");
    b.state.shutdown().await;
}

/// An audit entry of the test's own about the account `acme`.
pub fn acme_audit(action: &str) -> AuditEntry {
    AuditEntry {
        at: 1,
        actor: "test".into(),
        action: action.into(),
        resource: "account:acme".into(),
        origin: "test".into(),
        success: true,
        details: json!({}),
    }
}

/// A store at `url` holding one account, `acme`.
pub async fn store_with_acme(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let account = crate::support::account(
        "acme",
        vigil_host::runtime::bindings::types::Tier::Enterprise,
        vigil_host::runtime::bindings::types::Industry::Healthcare,
        200,
        150,
    );
    store
        .upsert_account(&account, acme_audit("account.upsert"))
        .await
        .unwrap();
    store
}

/// [`store_with_acme`], with one `usage.daily` event of `acme` stored.
async fn store_with_an_acme_event(url: &str) -> Store {
    let store = store_with_acme(url).await;
    let event = NewEvent {
        event: crate::support::event("acme", 1, "usage.daily", crate::support::NOW, json!({})),
        idempotency_key: None,
        body: "one".into(),
        generated_id: false,
    };
    store
        .insert_events(&[event], |_| acme_audit("event.ingest"))
        .await
        .unwrap();
    store
}

async fn fencing(url: &str) {
    let store = store_with_an_acme_event(url).await;
    let part = partition_of("acme");

    // Host a takes every partition and reads the event under its lease.
    let now = 1_000;
    let taken = store
        .acquire_partitions("a", &[], now, now + 100, i64::from(PARTITIONS))
        .await
        .unwrap();
    assert_eq!(taken.len(), usize::try_from(PARTITIONS).unwrap());
    let batch = store
        .claim_partition_events("a", part, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    // Host b cannot read it while a holds the lease...
    assert!(
        store
            .claim_partition_events("b", part, 10)
            .await
            .unwrap()
            .is_none()
    );
    // ...and takes it over once a's lease ran out (a paused, say).
    let later = now + 101;
    let taken = store
        .acquire_partitions("b", &[], later, later + 100, i64::from(PARTITIONS))
        .await
        .unwrap();
    assert_eq!(taken.len(), usize::try_from(PARTITIONS).unwrap());
    assert!(taken.iter().all(|l| l.term == 2), "{taken:?}");
    // What a host holds is neither taken again (a new term would fence
    // its own evaluations) nor renewed once given back.
    let held: Vec<i32> = taken.iter().map(|l| l.part).collect();
    assert!(
        store
            .acquire_partitions("b", &held, later + 1, later + 100, 4)
            .await
            .unwrap()
            .is_empty()
    );
    store.release_partitions("b", &held[8..]).await.unwrap();
    let renewed = store
        .renew_partitions("b", &held[..8], later + 100)
        .await
        .unwrap();
    assert_eq!(renewed.len(), 8);
    assert!(renewed.iter().all(|l| l.term == 2), "{renewed:?}");
    let free = store.partitions().await.unwrap();
    assert!(
        free[8..].iter().all(|(_, _, _, until, _)| *until == 0),
        "{free:?}"
    );
    let fence = |host: &str, term: i64| EvaluationFence {
        host: host.into(),
        part,
        term,
        watermark: batch.watermark,
        through: batch.events[0].0,
    };
    // a wakes and commits what it read: refused, nothing written.
    match store.record_evaluations(&fence("a", batch.term), &[]).await {
        Err(StoreError::LeaseLost { part: lost }) => assert_eq!(lost, part),
        other => panic!("a's stale commit was not refused: {other:?}"),
    }
    assert_eq!(store.unevaluated_count().await.unwrap(), 1);
    // b reads the same event and commits it, once.
    let again = store
        .claim_partition_events("b", part, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.term, 2);
    store
        .record_evaluations(&fence("b", again.term), &[])
        .await
        .unwrap();
    assert_eq!(store.unevaluated_count().await.unwrap(), 0);
    assert!(matches!(
        store.record_evaluations(&fence("b", again.term), &[]).await,
        Err(StoreError::LeaseLost { .. })
    ));

    // The leader lease: a leads, pauses past its lease, b takes over; a's
    // tick under its old term writes nothing, b's does.
    let term_a = store
        .acquire_leadership("a", now, now + 100)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .acquire_leadership("b", now + 50, now + 150)
            .await
            .unwrap()
            .is_none()
    );
    let term_b = store
        .acquire_leadership("b", later, later + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(term_b, term_a + 1);
    assert_eq!(
        store.run_tick("a", term_a, 7, later + 1).await.unwrap(),
        TickRun::NotLeader
    );
    assert_eq!(
        store.run_tick("b", term_b, 7, later + 1).await.unwrap(),
        TickRun::Ticked(1)
    );
    assert_eq!(
        store.run_tick("b", term_b, 7, later + 2).await.unwrap(),
        TickRun::AlreadyDone
    );
    let ticks: Vec<_> = store
        .events_for("acme")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "schedule.tick")
        .collect();
    assert_eq!(ticks.len(), 1);
    let (intact, broken) = store.verify_audit().await.unwrap();
    assert!(broken.is_none(), "{broken:?} after {intact}");
}

#[tokio::test]
async fn a_host_that_lost_its_lease_commits_nothing_on_postgres() {
    fencing(&fresh_postgres().await).await;
}

#[tokio::test]
async fn a_host_that_lost_its_lease_commits_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    fencing(&format!(
        "sqlite://{}",
        dir.path().join("vigil.db").display()
    ))
    .await;
}

#[tokio::test]
async fn a_leader_paused_inside_its_tick_keeps_the_lead_no_longer_than_its_lease_on_postgres() {
    let url = fresh_postgres().await;
    let store = store_with_acme(&url).await;
    let now = vigil_host::store::now_ms();
    let term_a = store
        .acquire_leadership("a", now, now + 3_000)
        .await
        .unwrap()
        .unwrap();

    // Host a's tick is held at its last statement, after the fence has
    // locked the lease row, and then paused there.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut tick = Box::pin(store.run_tick("a", term_a, 1, now));
    pause_after_lock(&pool, "schedule_runs", &mut tick).await;

    // Another host takes the lead once a's lease has run out: the server
    // ends a's idle transaction then, where it used to keep it (and every
    // other host out of the lead) for 15 s.
    let term_b = taken_over_within_8_s("the lead", async || {
        let now = vigil_host::store::now_ms();
        store
            .acquire_leadership("b", now, now + 1_000)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(term_b, term_a + 1);

    // a, resumed, has lost its transaction and wrote nothing.
    let resumed = tick.await;
    assert!(resumed.is_err(), "the paused leader's tick: {resumed:?}");
    let ticks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schedule_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ticks, 0);
    assert!(
        store
            .events_for("acme")
            .await
            .unwrap()
            .iter()
            .all(|event| event.kind != "schedule.tick")
    );
}

#[tokio::test]
async fn a_host_paused_inside_its_commit_keeps_its_partition_no_longer_than_its_lease_on_postgres()
{
    let url = fresh_postgres().await;
    let store = store_with_an_acme_event(&url).await;
    let part = partition_of("acme");
    let now = vigil_host::store::now_ms();
    store
        .acquire_partitions("a", &[], now, now + 3_000, i64::from(PARTITIONS))
        .await
        .unwrap();
    let batch = store
        .claim_partition_events("a", part, 10)
        .await
        .unwrap()
        .unwrap();
    let (seq, event) = &batch.events[0];
    let fence = EvaluationFence {
        host: "a".into(),
        part,
        term: batch.term,
        watermark: batch.watermark,
        through: *seq,
    };
    let writes = [EvaluationWrite {
        event_id: event.id.clone(),
        account_id: "acme".into(),
        scores: Vec::new(),
        intents: Vec::new(),
        cooldowns: vec![("usage-triggers/acme:usage.low".into(), now + 60_000)],
        signals: Vec::new(),
        audits: Vec::new(),
        evaluated_at: now,
    }];

    // Host a's commit is held after its fence has locked the partition's
    // row (at the cooldowns it writes next), and then paused there.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut commit = Box::pin(store.record_evaluations(&fence, &writes));
    pause_after_lock(&pool, "cooldowns", &mut commit).await;

    // Host b takes the partition once a's lease has run out, and reads the
    // event a did not commit.
    let taken = taken_over_within_8_s("the partition", async || {
        let now = vigil_host::store::now_ms();
        let taken = store
            .acquire_partitions("b", &[], now, now + 1_000, i64::from(PARTITIONS))
            .await
            .unwrap();
        taken.into_iter().find(|lease| lease.part == part)
    })
    .await;
    assert_eq!(taken.term, batch.term + 1);
    assert!(
        commit.await.is_err(),
        "the paused host's commit went through"
    );
    let again = store
        .claim_partition_events("b", part, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.watermark, batch.watermark);
    assert_eq!(again.events.len(), 1);
}

/// Holds `table` locked against writes (reads go on) while `work` is
/// polled, until `work` waits to write it; then stops polling it, as if
/// its host were paused (SIGSTOP) with its transaction open, and lets the
/// lock go: the statement ends and the work's session sits idle in its
/// transaction. Fails if `work` does not come to the lock within 10 s.
async fn pause_after_lock<F: std::future::Future>(
    pool: &sqlx::PgPool,
    table: &str,
    work: &mut std::pin::Pin<Box<F>>,
) where
    F::Output: std::fmt::Debug,
{
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query(&format!("LOCK TABLE {table} IN SHARE MODE"))
        .execute(&mut *blocker)
        .await
        .unwrap();
    let waiting = format!(
        "SELECT COUNT(*) FROM pg_locks WHERE relation = '{table}'::regclass AND NOT granted"
    );
    for polls in 0.. {
        assert!(polls < 500, "the work never came to the lock on {table}");
        let polled = tokio::time::timeout(Duration::from_millis(20), work.as_mut()).await;
        assert!(polled.is_err(), "the work ran past the lock: {polled:?}");
        let blocked: i64 = sqlx::query_scalar(&waiting).fetch_one(pool).await.unwrap();
        if blocked > 0 {
            break;
        }
    }
    blocker.commit().await.unwrap();
}

/// What `take` gives once it gives something, tried every 100 ms; fails
/// after 8 s (the server's default for an idle transaction is 15 s).
async fn taken_over_within_8_s<T>(what: &str, mut take: impl AsyncFnMut() -> Option<T>) -> T {
    let asked = std::time::Instant::now();
    loop {
        if let Some(taken) = take().await {
            return taken;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(8),
            "{what} was not taken over from a paused host"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_registry_change_without_a_notification_reaches_every_host_by_polling() {
    let url = fresh_postgres().await;
    let a = app_with(&url, host("host-a", 1000)).await;
    let b = app_with(&url, host("host-b", 1000)).await;
    let next = variant(standard("health-score"), "quiet");
    let (status, answer) = deploy(&a, next.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    eventually!(10, "host b serving the deploy", {
        serving(&b, "health-score").await == Some(sha256(&next))
    });

    // A rollback written behind the hosts' backs: states and clock, and no
    // NOTIFY (a lost notification).
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let good = sha256(standard("health-score"));
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE plugin_versions SET state = 'inactive' WHERE digest = $1")
        .bind(sha256(&next))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE plugin_versions SET state = 'active' WHERE digest = $1")
        .bind(&good)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE registry_clock SET version = version + 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for app in [&a, &b] {
        eventually!(5, "the change picked up by polling", {
            serving(app, "health-score").await == Some(good.clone())
        });
    }
    a.state.shutdown().await;
    b.state.shutdown().await;
}

#[tokio::test]
async fn the_scheduler_ticks_every_account_once_per_period_from_one_leader() {
    let url = fresh_postgres().await;
    let options = |id: &str| {
        let mut options = host(id, 1000);
        options.host.tick_every = Duration::from_secs(3600);
        options
    };
    let a = app_with(&url, options("host-a")).await;
    put_acme(&a).await;
    let b = app_with(&url, options("host-b")).await;
    let (status, _, _) = send(&b, "PUT", "/api/v1/customers/globex", Some(customer())).await;
    assert_eq!(status, StatusCode::OK);
    // The period's tick ran when the first host started (before the
    // accounts existed); force the next period's by hand-running it as
    // the leader would.
    let (leader, term, _) = a.state.store().leader().await.unwrap();
    assert!(leader == "host-a" || leader == "host-b", "{leader}");
    let period = vigil_host::store::now_ms() / 3_600_000 + 1;
    let run = a
        .state
        .store()
        .run_tick(&leader, term, period, vigil_host::store::now_ms())
        .await
        .unwrap();
    assert_eq!(run, TickRun::Ticked(2));
    let other = if leader == "host-a" {
        "host-b"
    } else {
        "host-a"
    };
    assert_eq!(
        a.state
            .store()
            .run_tick(other, term, period + 1, vigil_host::store::now_ms())
            .await
            .unwrap(),
        TickRun::NotLeader
    );
    let store = a.state.store().clone();
    eventually!(
        10,
        "the ticks evaluated",
        store.unevaluated_count().await.unwrap() == 0
    );
    let (status, _, score) = send(&b, "GET", "/api/v1/customers/globex/health-score", None).await;
    assert_eq!(status, StatusCode::OK, "{score}");
    a.state.shutdown().await;
    b.state.shutdown().await;
}

/// A webhook receiver: records every request (idempotency key, body) and
/// answers 503 to the first, 400 to a body naming `wh-bad`, 200 otherwise.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use axum::routing::post;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let mut log = log.lock().unwrap();
                log.push((key, body.clone()));
                if log.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else if body.contains("wh-bad") {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn webhook_intents_are_posted_to_their_connector_retried_when_it_fails_and_failed_when_refused_or_unknown()
 {
    let (url, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let mut options = HostOptions::default();
    options.host.connectors = vigil_host::connectors::Connectors::parse(&[format!("crm={url}")])
        .unwrap()
        .with_retry_base(Duration::from_millis(100));
    let app = app_with(&db, options).await;
    put_acme(&app).await;
    let (status, answer) = deploy(&app, component("webhook-playbook")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    let post = |id: &str, payload: Value| {
        json!({
            "id": id,
            "account_id": "acme",
            "kind": "test.webhook",
            "occurred_at": "2026-06-01T10:00:00Z",
            "payload": payload,
        })
        .to_string()
    };
    for (id, payload) in [
        ("wh-1", json!({})),
        ("wh-bad", json!({})),
        ("wh-nowhere", json!({"to": "missing"})),
    ] {
        let (status, _, answer) = send(
            &app,
            "POST",
            "/api/v1/events?wait=evaluated",
            Some(post(id, payload)),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    eventually!(10, "every webhook settled", {
        let (_, _, page) = send(&app, "GET", "/api/v1/actions?kind=webhook", None).await;
        let actions = page["actions"].as_array().unwrap();
        actions.len() == 3 && actions.iter().all(|a| a["state"] != "pending")
    });
    let (_, _, page) = send(&app, "GET", "/api/v1/actions?kind=webhook", None).await;
    let actions = page["actions"].as_array().unwrap().clone();
    let by_event = |id: &str| {
        actions
            .iter()
            .find(|a| a["event_id"] == id)
            .unwrap_or_else(|| panic!("no action for {id}: {actions:?}"))
            .clone()
    };
    // The first answer was 503: retried, then delivered.
    let first = by_event("wh-1");
    assert_eq!(first["state"], "delivered", "{first}");
    assert_eq!(first["attempts"], 2, "{first}");
    // 400: failed at once; an unknown connector: failed without a call.
    let bad = by_event("wh-bad");
    assert_eq!(bad["state"], "failed", "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("400"), "{bad}");
    let nowhere = by_event("wh-nowhere");
    assert_eq!(nowhere["state"], "failed", "{nowhere}");
    assert!(
        nowhere["error"]
            .as_str()
            .unwrap()
            .contains("no webhook connector named `missing`"),
        "{nowhere}"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let to_first: Vec<_> = seen
        .iter()
        .filter(|(key, _)| key == first["id"].as_str().unwrap())
        .collect();
    assert_eq!(to_first.len(), 2, "{seen:?}");
    assert_eq!(to_first[0], to_first[1], "a retry repeats the same request");
    assert_eq!(to_first[0].1, r#"{"event":"wh-1"}"#);
    let (_, _, page) = send(&app, "GET", "/api/v1/audit?limit=500", None).await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"intent.retry"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "intent.failed").count(),
        2,
        "{actions:?}"
    );
    app.state.shutdown().await;
}
