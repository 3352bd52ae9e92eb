//! The API beyond ingest: keys and roles, the outbox and its delivery,
//! interventions, automation triggers, score lists, usage, success plans,
//! the audit log, metrics, the OpenAPI document, recovery after a stop,
//! and group commit under concurrent posts.

use axum::http::StatusCode;
use serde_json::{Value, json};
use vigil_host::store::NewEvent;

use crate::api::{TestApp, app_on, customer, send, send_as, send_raw, sqlite_app, usage};
use crate::lifecycle::{acme_audit, store_with_acme};
use crate::store::fresh_postgres;

fn profile(tier: &str, industry: &str, seats: u32) -> String {
    json!({
        "name": "Test Co",
        "tier": tier,
        "industry": industry,
        "licensed_seats": seats,
        "renewal_date": "2026-08-01T00:00:00Z"
    })
    .to_string()
}

fn event(account: &str, at: &str, payload: Value, key: &str) -> Value {
    json!({
        "account_id": account,
        "kind": "usage.daily",
        "occurred_at": at,
        "payload": payload,
        "idempotency_key": key
    })
}

async fn post_and_wait(app: &TestApp, body: Value) -> Value {
    let (status, _, answer) = send(
        app,
        "POST",
        "/api/v1/events?wait=evaluated",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer
}

/// Waits until every action is out of `pending`.
async fn delivered_actions(app: &TestApp, query: &str) -> Vec<Value> {
    for _ in 0..100 {
        let (status, _, page) = send(app, "GET", &format!("/api/v1/actions?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let actions = page["actions"].as_array().unwrap().clone();
        if !actions.is_empty() && actions.iter().all(|a| a["state"] != "pending") {
            return actions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("actions were not delivered");
}

#[tokio::test]
async fn requests_without_a_key_get_401_and_with_too_small_a_role_403() {
    let (_dir, app) = sqlite_app().await;
    let (status, content_type, body) = send_as(
        &app,
        None,
        "GET",
        "/api/v1/customers/acme/health-score",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type, "application/problem+json");
    assert!(
        body["detail"].as_str().unwrap().contains("Bearer"),
        "{body}"
    );
    let (status, _, _) = send_as(
        &app,
        Some("vgl_000000000000_0000000000000000000000000000000000000000000000000000000000000000"),
        "GET",
        "/api/v1/scores",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send_as(&app, Some("not-a-key"), "GET", "/api/v1/scores", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, body) = send_as(
        &app,
        Some(&app.viewer),
        "PUT",
        "/api/v1/customers/acme",
        Some(customer()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("operator"));
    let (status, _, _) = send_as(&app, Some(&app.operator), "GET", "/api/v1/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send_as(
        &app,
        Some(&app.operator),
        "POST",
        "/api/v1/keys",
        Some(json!({"role": "admin"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Reads are open to every role; health and the document to anyone.
    let (status, _, _) = send_as(&app, Some(&app.admin), "GET", "/api/v1/scores", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        send_as(&app, None, "GET", "/healthz", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send_as(&app, None, "GET", "/api/openapi.json", None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_admin_creates_keys_whose_role_then_applies() {
    let (_dir, app) = sqlite_app().await;
    let (status, _, created) = send(
        &app,
        "POST",
        "/api/v1/keys",
        Some(json!({"role": "viewer", "label": "dashboard"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("vgl_"));
    assert_eq!(
        send_as(&app, Some(key), "GET", "/api/v1/scores", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send_as(
            &app,
            Some(key),
            "POST",
            "/api/v1/events",
            Some(usage(1, "x").to_string())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, _, problem) = send(
        &app,
        "POST",
        "/api/v1/keys",
        Some(json!({"role": "root"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "role");
}

async fn outbox_flow(app: &TestApp) {
    send(app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    // No active user out of 200 seats: usage.none and a critical health.
    post_and_wait(app, usage(0, "none-1")).await;
    let actions = delivered_actions(app, "account_id=acme").await;
    assert!(
        actions.iter().any(|a| a["kind"] == "escalate"),
        "{actions:?}"
    );
    for action in &actions {
        assert_eq!(action["state"], "delivered", "{action}");
        assert!(
            action["source"]
                .as_str()
                .unwrap()
                .starts_with("plugin:escalation-actions@")
        );
        assert!(action["delivered_at"].is_string());
    }
    let (_, _, escalations) = send(
        app,
        "GET",
        "/api/v1/actions?kind=escalate&state=delivered",
        None,
    )
    .await;
    assert!(!escalations["actions"].as_array().unwrap().is_empty());

    // Paging: one at a time, every action once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let uri = match cursor {
            Some(c) => format!("/api/v1/actions?limit=1&cursor={c}"),
            None => "/api/v1/actions?limit=1".to_string(),
        };
        let (_, _, page) = send(app, "GET", &uri, None).await;
        seen.extend(
            page["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["seq"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<i64> = actions.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert_eq!(seen, all);

    // The same signal an hour later is on cooldown: nothing new planned.
    let mut again = usage(0, "none-2");
    again["occurred_at"] = json!("2026-06-01T11:00:00Z");
    post_and_wait(app, again).await;
    let (_, _, page) = send(app, "GET", "/api/v1/actions?account_id=acme", None).await;
    assert_eq!(page["actions"].as_array().unwrap().len(), actions.len());
}

#[tokio::test]
async fn planned_intents_are_delivered_and_listed_with_their_state_on_sqlite() {
    let (_dir, app) = sqlite_app().await;
    outbox_flow(&app).await;
}

#[tokio::test]
async fn planned_intents_are_delivered_and_listed_with_their_state_on_postgres() {
    let app = app_on(&fresh_postgres().await).await;
    outbox_flow(&app).await;
}

#[tokio::test]
async fn cooldowns_and_planned_intents_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let before = app_on(&url).await;
    send(&before, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    post_and_wait(&before, usage(0, "none-1")).await;
    let planned = delivered_actions(&before, "account_id=acme").await.len();
    before.state.shutdown().await;
    drop(before);

    let after = app_on(&url).await;
    let mut again = usage(0, "none-2");
    again["occurred_at"] = json!("2026-06-01T11:00:00Z");
    let answer = post_and_wait(&after, again).await;
    let event_id = answer["events"][0]["id"].as_str().unwrap().to_string();
    let (_, _, page) = send(&after, "GET", "/api/v1/actions?account_id=acme", None).await;
    assert_eq!(page["actions"].as_array().unwrap().len(), planned);
    // The evaluation was recorded: its signals were suppressed.
    let (_, _, audit) = send(&after, "GET", "/api/v1/audit?limit=500", None).await;
    let acted_on_second: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "signal.acted" && e["origin"] == format!("event:{event_id}"))
        .collect();
    assert!(acted_on_second.is_empty(), "{acted_on_second:?}");
}

#[tokio::test]
async fn events_committed_but_not_evaluated_are_evaluated_when_the_host_starts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    {
        // A host that committed and stopped before evaluating: the store
        // alone, as the committer leaves it.
        let store = store_with_acme(&url).await;
        let events: Vec<NewEvent> = (0..3)
            .map(|n| NewEvent {
                event: crate::support::event(
                    "acme",
                    n,
                    "usage.daily",
                    crate::support::NOW + n as i64 * 1000,
                    json!({"active_users": 100 + n, "logins": 10}),
                ),
                idempotency_key: None,
                body: format!("body-{n}"),
                generated_id: false,
            })
            .collect();
        store
            .insert_events(&events, |_| acme_audit("event.ingest"))
            .await
            .unwrap();
    }
    let app = app_on(&url).await;
    let mut score = Value::Null;
    for _ in 0..100 {
        let (status, _, body) =
            send(&app, "GET", "/api/v1/customers/acme/health-score", None).await;
        if status == StatusCode::OK {
            score = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(score["account_id"], "acme", "no score after start: {score}");
    let usage_note = score["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "usage")
        .unwrap()["note"]
        .clone();
    assert_eq!(usage_note, "102 of 200 licensed seats active", "{score}");
}

async fn intervention_flow(app: &TestApp) {
    send(app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    let body = json!({
        "action": "escalate",
        "level": "l3",
        "reason": "Executive sponsor left; renewal at risk",
        "idempotency_key": "exec-left"
    });
    let (status, _, first) = send(
        app,
        "POST",
        "/api/v1/customers/acme/intervention",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["kind"], "escalate");
    assert_eq!(first["details"]["level"], "l3");
    assert!(first["source"].as_str().unwrap().starts_with("key:"));
    let (status, _, again) = send(
        app,
        "POST",
        "/api/v1/customers/acme/intervention",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["seq"], first["seq"]);
    let mut other = body.clone();
    other["level"] = json!("l1");
    let (status, _, _) = send(
        app,
        "POST",
        "/api/v1/customers/acme/intervention",
        Some(other.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, problem) = send(
        app,
        "POST",
        "/api/v1/customers/acme/intervention",
        Some(json!({"action": "escalate", "reason": "x"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "level");
    let (status, _, _) = send(
        app,
        "POST",
        "/api/v1/customers/nobody/intervention",
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions = delivered_actions(app, "account_id=acme&kind=escalate").await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["signal"], "intervention");
}

#[tokio::test]
async fn an_intervention_goes_through_the_outbox_once_per_key_on_sqlite() {
    let (_dir, app) = sqlite_app().await;
    intervention_flow(&app).await;
}

#[tokio::test]
async fn an_intervention_goes_through_the_outbox_once_per_key_on_postgres() {
    let app = app_on(&fresh_postgres().await).await;
    intervention_flow(&app).await;
}

async fn scores_flow(app: &TestApp) {
    let accounts = [
        ("a-ent-health", "enterprise", "healthcare", 5),
        ("b-ent-fin", "enterprise", "financial-services", 90),
        ("c-mid-health", "mid-market", "healthcare", 95),
        ("d-small-tech", "small-business", "technology", 0),
        ("e-ent-health", "enterprise", "healthcare", 98),
    ];
    for (id, tier, industry, active) in accounts {
        let (status, _, body) = send(
            app,
            "PUT",
            &format!("/api/v1/customers/{id}"),
            Some(profile(tier, industry, 100)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        post_and_wait(
            app,
            event(
                id,
                "2026-06-01T10:00:00Z",
                json!({"active_users": active, "logins": active * 3}),
                &format!("{id}-1"),
            ),
        )
        .await;
    }
    let (status, _, page) = send(app, "GET", "/api/v1/scores", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "a-ent-health",
            "b-ent-fin",
            "c-mid-health",
            "d-small-tech",
            "e-ent-health"
        ]
    );
    assert!(page["next_cursor"].is_null());

    let (_, _, page) = send(
        app,
        "GET",
        "/api/v1/scores?tier=enterprise&industry=healthcare",
        None,
    )
    .await;
    let ids: Vec<&str> = page["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-ent-health", "e-ent-health"]);

    // Every band filter returns exactly the accounts in that band.
    let (_, _, all) = send(app, "GET", "/api/v1/scores", None).await;
    for band in ["critical", "declining", "stable", "optimal"] {
        let (_, _, page) = send(app, "GET", &format!("/api/v1/scores?band={band}"), None).await;
        let expected: Vec<&Value> = all["scores"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["band"] == band)
            .collect();
        assert_eq!(
            page["scores"].as_array().unwrap().len(),
            expected.len(),
            "{band}"
        );
    }

    // Pages of two: every account once, in order.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/scores?limit=2".to_string();
    loop {
        let (_, _, page) = send(app, "GET", &uri, None).await;
        seen.extend(
            page["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["account_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/scores?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], "a-ent-health");
    assert_eq!(seen[4], "e-ent-health");

    for (query, field) in [
        ("band=purple", "band"),
        ("tier=galactic", "tier"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("colour=red", "query"),
        ("limit=many", "query"),
    ] {
        let (status, content_type, problem) =
            send(app, "GET", &format!("/api/v1/scores?{query}"), None).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["field"], field, "{query}");
    }
}

#[tokio::test]
async fn scores_are_listed_filtered_by_band_tier_and_industry_and_paged_on_sqlite() {
    let (_dir, app) = sqlite_app().await;
    scores_flow(&app).await;
}

#[tokio::test]
async fn scores_are_listed_filtered_by_band_tier_and_industry_and_paged_on_postgres() {
    let app = app_on(&fresh_postgres().await).await;
    scores_flow(&app).await;
}

#[tokio::test]
async fn usage_metrics_aggregate_the_accounts_events_over_7_30_and_90_days() {
    let (_dir, app) = sqlite_app().await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    let days = ["2026-03-10", "2026-05-20", "2026-05-28", "2026-06-01"];
    let batch: Vec<Value> = days
        .iter()
        .enumerate()
        .map(|(n, day)| {
            event(
                "acme",
                &format!("{day}T10:00:00Z"),
                json!({"active_users": 100 + n, "logins": 10}),
                &format!("u-{n}"),
            )
        })
        .collect();
    post_and_wait(&app, Value::from(batch)).await;
    let (status, _, usage) = send(&app, "GET", "/api/v1/customers/acme/usage-metrics", None).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["as_of"], "2026-06-01T10:00:00Z");
    assert_eq!(usage["licensed_seats"], 200);
    assert_eq!(usage["active_users"], 103);
    let logins = &usage["metrics"]["logins"];
    assert_eq!(logins["d7"]["count"], 2, "{usage}");
    assert_eq!(logins["d30"]["count"], 3);
    assert_eq!(logins["d90"]["count"], 4);
    assert_eq!(logins["d30"]["sum"], 30.0);
    assert_eq!(usage["metrics"]["active-users"]["d7"]["last"], 103.0);
    let (_, _, earlier) = send(
        &app,
        "GET",
        "/api/v1/customers/acme/usage-metrics?at=2026-05-21T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(earlier["metrics"]["logins"]["d7"]["count"], 1, "{earlier}");
    let (status, _, _) = send(&app, "GET", "/api/v1/customers/nobody/usage-metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_success_plan_is_stored_versioned_and_validated() {
    let (_dir, app) = sqlite_app().await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    let plan = json!({
        "objectives": [
            {"title": "Reach 80% seat usage", "metric": "active-users", "target": 160, "due_date": "2026-09-30T00:00:00Z"}
        ],
        "owner": "csm",
        "review_date": "2026-07-15T00:00:00Z"
    });
    let (status, _, first) = send(
        &app,
        "PUT",
        "/api/v1/customers/acme/success-plan",
        Some(plan.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["version"], 1);
    assert_eq!(first["plan"]["objectives"][0]["status"], "planned");
    let (_, _, second) = send(
        &app,
        "PUT",
        "/api/v1/customers/acme/success-plan",
        Some(plan.to_string()),
    )
    .await;
    assert_eq!(second["version"], 2);
    let (status, _, read) = send(&app, "GET", "/api/v1/customers/acme/success-plan", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["plan"], second["plan"]);
    assert!(read["updated_by"].as_str().unwrap().starts_with("key:"));

    let mut bad = plan.clone();
    bad["objectives"][0]["status"] = json!("forgotten");
    let (status, _, problem) = send(
        &app,
        "PUT",
        "/api/v1/customers/acme/success-plan",
        Some(bad.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "objectives[0].status");
    let (status, _, _) = send(
        &app,
        "PUT",
        "/api/v1/customers/acme/success-plan",
        Some(json!({"objectives": []}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = send(&app, "GET", "/api/v1/customers/globex/success-plan", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn automation_triggers_evaluate_the_account_and_report_their_own_signals() {
    let (_dir, app) = sqlite_app().await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    post_and_wait(&app, usage(0, "u-0")).await;
    let trigger = |name: &str| {
        let app = &app;
        let name = name.to_string();
        async move {
            send(
                app,
                "POST",
                &format!("/api/v1/automation/triggers/{name}"),
                Some(json!({"account_id": "acme", "at": "2026-06-01T12:00:00Z"}).to_string()),
            )
            .await
        }
    };
    let (status, _, result) = trigger("health-score").await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let signals = result["signals"].as_array().unwrap();
    assert!(!signals.is_empty(), "{result}");
    assert!(
        signals
            .iter()
            .all(|s| s["name"].as_str().unwrap().starts_with("health."))
    );
    // Planned two hours earlier by the usage event: on cooldown now.
    assert!(
        signals
            .iter()
            .any(|s| s["disposition"]["disposition"] == "suppressed"),
        "{result}"
    );
    let (status, _, result) = trigger("usage-decline").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        result["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "usage.none"),
        "{result}"
    );
    // A renewal 19 days out at critical health.
    let renewing = customer().replace("2027-01-01T00:00:00Z", "2026-06-20T12:00:00Z");
    send(&app, "PUT", "/api/v1/customers/acme", Some(renewing)).await;
    let (status, _, result) = trigger("renewal-risk").await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let signals = result["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "{result}");
    assert_eq!(signals[0]["name"], "renewal.at-risk");
    assert_eq!(signals[0]["severity"], "critical");
    assert_eq!(signals[0]["disposition"]["disposition"], "acted");
    assert!(
        result["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "escalate" && a["signal"] == "renewal.at-risk"),
        "{result}"
    );
    let (status, _, problem) = trigger("moon-phase").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("expansion-ready")
    );
}

#[tokio::test]
async fn the_audit_log_pages_for_admins_records_its_own_reading_and_verifies() {
    let (_dir, app) = sqlite_app().await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    post_and_wait(&app, usage(0, "u-0")).await;
    let (status, _, page) = send(&app, "GET", "/api/v1/audit?limit=500", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "key.create",
        "account.upsert",
        "event.ingest",
        "signal.acted",
        "intent.planned",
        "audit.read",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let upsert = entries
        .iter()
        .find(|e| e["action"] == "account.upsert")
        .unwrap();
    assert!(upsert["actor"].as_str().unwrap().starts_with("key:"));
    assert_eq!(upsert["resource"], "account:acme");
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(
            pair[1]["seq"].as_i64().unwrap(),
            pair[0]["seq"].as_i64().unwrap() + 1
        );
    }
    let (_, _, first) = send(&app, "GET", "/api/v1/audit?limit=2", None).await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_i64().unwrap();
    let (_, _, next) = send(
        &app,
        "GET",
        &format!("/api/v1/audit?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(next["entries"][0]["seq"].as_i64().unwrap(), cursor + 1);
    let (intact, broken) = app.state.store().verify_audit().await.unwrap();
    assert!(intact > 0);
    assert_eq!(broken, None);
}

#[tokio::test]
async fn metrics_count_requests_pipeline_runs_and_plugin_calls() {
    let (_dir, app) = sqlite_app().await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    post_and_wait(&app, usage(40, "u-0")).await;
    let (status, headers, body) = send_raw(&app, Some(&app.viewer), "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("vigil_pipeline_runs_total 1"), "{text}");
    assert!(text.contains("vigil_events_ingested_total 1"), "{text}");
    assert!(
        text.contains(r#"vigil_plugin_invocations_total{plugin="health-score",version="#),
        "{text}"
    );
    assert!(text.contains("vigil_plugin_fuel_total{"), "{text}");
    assert!(
        text.contains(r#"route="/api/v1/events",status="202""#),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let (_dir, app) = sqlite_app().await;
    let (status, _, doc) = send_as(&app, None, "GET", "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/openapi.json", "get"),
        ("/api/v1/customers/{id}", "put"),
        ("/api/v1/customers/{id}", "get"),
        ("/api/v1/customers/{id}/health-score", "get"),
        ("/api/v1/customers/{id}/usage-metrics", "get"),
        ("/api/v1/customers/{id}/success-plan", "put"),
        ("/api/v1/customers/{id}/success-plan", "get"),
        ("/api/v1/customers/{id}/intervention", "post"),
        ("/api/v1/events", "post"),
        ("/api/v1/automation/triggers/{trigger}", "post"),
        ("/api/v1/scores", "get"),
        ("/api/v1/actions", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/keys", "post"),
        ("/api/v1/plugins", "post"),
        ("/api/v1/plugins", "get"),
        ("/api/v1/plugins/{name}", "get"),
        ("/api/v1/plugins/{name}/rollback", "post"),
        ("/api/v1/plugins/{name}/release", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    assert_eq!(paths.len(), 19);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "HealthScore",
        "Problem",
        "EventBody",
        "Action",
        "ScorePage",
        "PluginDetail",
        "DeployOut",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_openapi_document_puts_query_parameters_in_the_query_and_names_the_answers_every_route_can_give()
 {
    let (_dir, app) = sqlite_app().await;
    let (status, _, doc) = send_as(&app, None, "GET", "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = &doc["paths"];
    // Query parameters are optional and in the query, not the path (a
    // client built from the document would otherwise put them in the URL
    // path and make every one of them required).
    for (path, method, names) in [
        (
            "/api/v1/scores",
            "get",
            &["name", "band", "tier", "industry", "cursor", "limit"][..],
        ),
        (
            "/api/v1/actions",
            "get",
            &["account_id", "kind", "state", "cursor", "limit"][..],
        ),
        ("/api/v1/audit", "get", &["cursor", "limit"][..]),
        ("/api/v1/events", "post", &["wait"][..]),
        ("/api/v1/customers/{id}/usage-metrics", "get", &["at"][..]),
    ] {
        let parameters = paths[path][method]["parameters"].as_array().unwrap();
        for name in names {
            let parameter = parameters
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{method} {path} has no parameter `{name}`"));
            assert_eq!(parameter["in"], "query", "{method} {path} `{name}`");
            assert_ne!(parameter["required"], true, "{method} {path} `{name}`");
        }
    }
    for path in ["/api/v1/scores", "/api/v1/actions", "/api/v1/audit"] {
        let parameters = paths[path]["get"]["parameters"].as_array().unwrap();
        let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["minimum"], 1, "{path}");
        assert_eq!(
            limit["schema"]["maximum"],
            vigil_host::api::MAX_PAGE,
            "{path}"
        );
    }
    // Every operation behind a key names 401 and 503; every one that takes
    // a JSON body names 400, 413 and 422.
    let mut keyed = 0;
    for (path, item) in paths.as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                keyed += 1;
                for status in ["401", "503"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                    assert_eq!(
                        responses[status]["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path}: {status}"
                    );
                }
            }
            if operation["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for status in ["400", "413", "422"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
        }
    }
    assert_eq!(keyed, 19);
    // 422 where a value can be refused (an account id is checked), not
    // where none can (a plugin's name is only looked up).
    assert!(
        paths["/api/v1/customers/{id}"]["get"]["responses"]
            .get("422")
            .is_some()
    );
    assert!(
        paths["/api/v1/plugins/{name}"]["get"]["responses"]
            .get("422")
            .is_none()
    );
    let intervention = &paths["/api/v1/customers/{id}/intervention"]["post"]["responses"];
    assert!(intervention.get("409").is_some());
    let ingest = &paths["/api/v1/events"]["post"]["responses"];
    assert!(
        ingest["202"]["headers"]
            .get("Idempotent-Replayed")
            .is_some()
    );
    // A stored customer is one object naming every field it has, so that
    // the answers validate against it.
    let customer = &doc["components"]["schemas"]["Customer"];
    assert_eq!(customer["type"], "object");
    assert!(customer.get("allOf").is_none());
    assert_ne!(customer["additionalProperties"], false);
    let required = customer["required"].as_array().unwrap();
    for field in [
        "id",
        "name",
        "tier",
        "industry",
        "licensed_seats",
        "active_users",
        "arr",
        "contract_start",
        "renewal_date",
        "attributes",
    ] {
        assert!(
            required.iter().any(|r| r == field),
            "Customer.{field} is not required"
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["CustomerBody"]["additionalProperties"],
        false
    );
    let upload =
        &paths["/api/v1/plugins"]["post"]["requestBody"]["content"]["application/wasm"]["schema"];
    assert_eq!(upload["type"], "string");
    assert_eq!(upload["format"], "binary");
}

/// The values the document allows for a field or parameter, without null.
fn allowed(schema: &Value) -> Vec<String> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// Sends a request and checks its answer: `Ok(status)`, or `Err(field)`
/// for a 422 naming that field.
async fn answers(
    app: &TestApp,
    method: &str,
    uri: &str,
    body: Option<String>,
    expected: Result<StatusCode, &str>,
) {
    let (status, _, answer) = send(app, method, uri, body).await;
    match expected {
        Ok(expected) => assert_eq!(status, expected, "{method} {uri}: {answer}"),
        Err(field) => {
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {uri}: {answer}"
            );
            assert_eq!(answer["field"], field, "{method} {uri}: {answer}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_allows_exactly_the_values_and_sizes_the_api_takes() {
    let (_dir, app) = sqlite_app().await;
    let (status, _, doc) = send_as(&app, None, "GET", "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let schemas = &doc["components"]["schemas"];
    let parameter = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no parameter `{name}`"))["schema"]
            .clone()
    };
    let put = |uri: String, body: String| (uri, "PUT", Some(body));
    let post = |uri: &str, body: Value| (uri.to_string(), "POST", Some(body.to_string()));

    // A profile's tier and industry: every value the document lists is
    // stored, and the stored customer lists the same.
    let tiers = allowed(&schemas["CustomerBody"]["properties"]["tier"]);
    let industries = allowed(&schemas["CustomerBody"]["properties"]["industry"]);
    assert_eq!(tiers.len(), 3);
    assert_eq!(industries.len(), 7);
    assert_eq!(allowed(&schemas["Customer"]["properties"]["tier"]), tiers);
    let mut requests = Vec::new();
    for (i, tier) in tiers.iter().enumerate() {
        for industry in &industries {
            requests.push((
                put(
                    format!("/api/v1/customers/acct-{i}"),
                    profile(tier, industry, 10),
                ),
                Ok(StatusCode::OK),
            ));
        }
    }
    let acme = || "/api/v1/customers/acme".to_string();
    // Text that must not be all white space says so with a pattern.
    for (schema, field) in [
        ("CustomerBody", "name"),
        ("InterventionBody", "reason"),
        ("Objective", "title"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"], "\\S",
            "{schema}.{field}"
        );
    }
    let blank =
        json!({"name": " ", "tier": "enterprise", "industry": "other", "licensed_seats": 1});
    requests.push((put(acme(), blank.to_string()), Err("name")));
    requests.push((put(acme(), profile("gold", "healthcare", 10)), Err("tier")));
    requests.push((
        put(acme(), profile("enterprise", "retail", 10)),
        Err("industry"),
    ));

    // An account id: the pattern the document gives, at its limits.
    let id = &doc["paths"]["/api/v1/customers/{id}"]["put"]["parameters"][0];
    assert_eq!(id["name"], "id");
    let pattern = id["schema"]["pattern"].as_str().unwrap();
    assert_eq!(pattern, "^[A-Za-z0-9._:-]{1,128}$");
    for (schema, field) in [
        ("EventBody", "id"),
        ("EventBody", "account_id"),
        ("EventBody", "idempotency_key"),
        ("TriggerBody", "account_id"),
        ("InterventionBody", "idempotency_key"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"], pattern,
            "{schema}.{field}"
        );
    }
    let longest = format!("Aa0._:-{}", "z".repeat(121));
    assert_eq!(longest.len(), 128);
    let customer_at = |id: &str| {
        put(
            format!("/api/v1/customers/{id}"),
            profile("enterprise", "healthcare", 10),
        )
    };
    for (path, name) in [
        ("/api/v1/scores", "name"),
        ("/api/v1/scores", "cursor"),
        ("/api/v1/actions", "account_id"),
    ] {
        assert_eq!(
            parameter(path, "get", name)["pattern"],
            pattern,
            "{path} {name}"
        );
    }
    requests.push((("/api/v1/scores?name=".into(), "GET", None), Err("name")));
    requests.push((customer_at(&longest), Ok(StatusCode::OK)));
    // Seats are unsigned 32-bit: the document gives that range (an
    // `int32` would stop at half of it).
    let seats = &schemas["CustomerBody"]["properties"]["licensed_seats"];
    assert_eq!(seats["minimum"], 0);
    assert_eq!(seats["maximum"], u32::MAX);
    assert_ne!(seats["format"], "int32");
    requests.push((
        put(
            "/api/v1/customers/acct-big".into(),
            profile("enterprise", "other", u32::MAX),
        ),
        Ok(StatusCode::OK),
    ));
    // A count is a whole number, with or without a zero fraction, as JSON
    // Schema's `integer` takes it.
    for (seats, expected) in [
        (json!(10.0), Ok(StatusCode::OK)),
        (json!(10.5), Err("body")),
        (json!(-1), Err("body")),
        (json!(4_294_967_296_u64), Err("body")),
    ] {
        let body = json!({"name": "Acme", "tier": "enterprise", "industry": "other",
            "licensed_seats": seats, "active_users": 3.0});
        requests.push((put(acme(), body.to_string()), expected));
    }
    // ARR is a signed 64-bit integer, as the document says.
    let arr = &schemas["CustomerBody"]["properties"]["arr"];
    assert_eq!(arr["format"], "int64");
    assert_eq!(arr["maximum"], i64::MAX);
    for (arr, expected) in [
        (i64::MAX.unsigned_abs(), Ok(StatusCode::OK)),
        (i64::MAX.unsigned_abs() + 1, Err("arr")),
    ] {
        let body = json!({"name": "Big", "tier": "enterprise", "industry": "other",
            "licensed_seats": 1, "arr": arr});
        requests.push((put(acme(), body.to_string()), expected));
    }
    requests.push((customer_at(&format!("{longest}z")), Err("id")));
    requests.push((customer_at("a%21b"), Err("id")));

    // The filters of the score and action lists.
    for (path, names) in [
        ("/api/v1/scores", &["band", "tier", "industry"][..]),
        ("/api/v1/actions", &["state", "kind"][..]),
    ] {
        for name in names {
            let values = allowed(&parameter(path, "get", name));
            assert!(!values.is_empty());
            for value in values {
                let uri = format!("{path}?{name}={value}");
                requests.push(((uri, "GET", None), Ok(StatusCode::OK)));
            }
            let uri = format!("{path}?{name}=none-such");
            requests.push(((uri, "GET", None), Err(*name)));
        }
    }
    assert_eq!(allowed(&parameter("/api/v1/scores", "get", "tier")), tiers);

    // Ingest: `wait`, the kind's pattern and the batch's size.
    let event = |kind: &str, key: &str| {
        json!({
            "account_id": "acct-0",
            "kind": kind,
            "occurred_at": "2026-06-01T10:00:00Z",
            "payload": {"logins": 1},
            "idempotency_key": key
        })
    };
    let waits = allowed(&parameter("/api/v1/events", "post", "wait"));
    assert_eq!(waits, ["committed", "evaluated"]);
    for wait in waits.iter().map(String::as_str).chain(["never"]) {
        let uri = format!("/api/v1/events?wait={wait}");
        let expected = if wait == "never" {
            Err("wait")
        } else {
            Ok(StatusCode::ACCEPTED)
        };
        requests.push((post(&uri, event("usage.daily", wait)), expected));
    }
    assert_eq!(
        schemas["EventBody"]["properties"]["kind"]["pattern"],
        "^[a-z0-9._-]{1,128}$"
    );
    requests.push((
        post("/api/v1/events", event("Usage.Daily", "k")),
        Err("[0].kind"),
    ));
    let batch = schemas["EventsBody"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "array")
        .unwrap();
    assert_eq!(batch["minItems"], 1);
    assert_eq!(batch["maxItems"], vigil_host::api::MAX_BATCH);
    let over: Vec<Value> = (0..=vigil_host::api::MAX_BATCH)
        .map(|i| event("usage.daily", &format!("b-{i}")))
        .collect();
    requests.push((post("/api/v1/events", json!([])), Err("events")));
    requests.push((post("/api/v1/events", Value::from(over)), Err("events")));

    // An intervention's action, timing, level and channel; its reason's
    // length in characters (two bytes each here).
    let intervention = &schemas["InterventionBody"]["properties"];
    let timing_values = intervention["timing"]["enum"].as_array().unwrap();
    assert!(
        timing_values.contains(&Value::Null),
        "an optional field may be sent as null: {timing_values:?}"
    );
    let mut bodies = Vec::new();
    for action in allowed(&intervention["action"]) {
        let level = (action == "escalate").then_some("l1");
        bodies.push(json!({"action": action, "reason": "check in", "level": level}));
    }
    assert_eq!(bodies.len(), 4);
    for timing in allowed(&intervention["timing"]) {
        bodies.push(json!({"action": "task", "reason": "check in", "timing": timing}));
    }
    for level in allowed(&intervention["level"]) {
        bodies.push(json!({"action": "escalate", "reason": "check in", "level": level}));
    }
    for channel in allowed(&intervention["channel"]) {
        bodies.push(json!({"action": "notify", "reason": "check in", "channel": channel}));
    }
    assert_eq!(intervention["reason"]["maxLength"], 2000);
    bodies.push(json!({"action": "task", "reason": "é".repeat(2000)}));
    let to_acct_0 = "/api/v1/customers/acct-0/intervention";
    for body in bodies {
        requests.push((post(to_acct_0, body), Ok(StatusCode::CREATED)));
    }
    for (body, field) in [
        (json!({"action": "call", "reason": "check in"}), "action"),
        (
            json!({"action": "task", "reason": "check in", "timing": "soon"}),
            "timing",
        ),
        (
            json!({"action": "escalate", "reason": "check in", "level": "l4"}),
            "level",
        ),
        (
            json!({"action": "notify", "reason": "check in", "channel": "fax"}),
            "channel",
        ),
        (
            json!({"action": "task", "reason": "é".repeat(2001)}),
            "reason",
        ),
    ] {
        requests.push((post(to_acct_0, body), Err(field)));
    }

    // A success plan: every objective status, 1 to 50 objectives.
    let plan = &schemas["SuccessPlanBody"]["properties"]["objectives"];
    assert_eq!(plan["minItems"], 1);
    assert_eq!(plan["maxItems"], 50);
    let objectives: Vec<Value> = allowed(&schemas["Objective"]["properties"]["status"])
        .into_iter()
        .map(|status| json!({"title": "adoption", "status": status}))
        .collect();
    assert_eq!(objectives.len(), 4);
    let plan_of = |objectives: Value| {
        put(
            "/api/v1/customers/acct-0/success-plan".into(),
            json!({ "objectives": objectives }).to_string(),
        )
    };
    requests.push((plan_of(Value::from(objectives)), Ok(StatusCode::OK)));
    requests.push((
        plan_of(json!([{"title": "adoption", "status": "done"}])),
        Err("objectives[0].status"),
    ));

    // A key's role, and its label's length in characters.
    let key = &schemas["KeyBody"]["properties"];
    assert_eq!(key["label"]["maxLength"], 200);
    for role in allowed(&key["role"]) {
        let body = json!({"role": role, "label": "é".repeat(200)});
        requests.push((post("/api/v1/keys", body), Ok(StatusCode::CREATED)));
    }
    requests.push((post("/api/v1/keys", json!({"role": "root"})), Err("role")));
    requests.push((
        post(
            "/api/v1/keys",
            json!({"role": "viewer", "label": "é".repeat(201)}),
        ),
        Err("label"),
    ));

    // The automation triggers: every one the document names is known (the
    // account id is then what is refused), any other is not found.
    let triggers = allowed(&parameter(
        "/api/v1/automation/triggers/{trigger}",
        "post",
        "trigger",
    ));
    assert_eq!(triggers.len(), 4);
    for trigger in triggers.iter().map(String::as_str).chain(["none-such"]) {
        let uri = format!("/api/v1/automation/triggers/{trigger}");
        let expected = if trigger == "none-such" {
            Ok(StatusCode::NOT_FOUND)
        } else {
            Err("account_id")
        };
        requests.push((post(&uri, json!({"account_id": "no such"})), expected));
    }

    for ((uri, method, body), expected) in requests {
        answers(&app, method, &uri, body, expected).await;
    }

    // RFC 3339 times are marked as such, in bodies, answers and the query.
    for (schema, field) in [
        ("CustomerBody", "renewal_date"),
        ("EventBody", "occurred_at"),
        ("InterventionBody", "due_at"),
        ("HealthScore", "computed_at"),
        ("Action", "planned_at"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["format"], "date-time",
            "{schema}.{field}"
        );
    }
    assert_eq!(
        parameter("/api/v1/customers/{id}/usage-metrics", "get", "at")["format"],
        "date-time"
    );
}

#[tokio::test]
async fn a_known_path_with_an_unknown_method_is_a_problem_with_the_allowed_methods() {
    let (_dir, app) = sqlite_app().await;
    let (status, headers, bytes) = send_raw(
        &app,
        Some(&app.operator),
        "DELETE",
        "/api/v1/customers/acme/intervention",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["allow"], "POST");
    let problem: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(problem["status"], 405);
    assert!(
        problem["detail"].as_str().unwrap().contains("DELETE"),
        "{problem}"
    );
    // An unknown path is still a 404.
    let (status, content_type, _) = send(&app, "DELETE", "/api/v1/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/problem+json");
}

#[tokio::test]
async fn concurrent_posts_are_group_committed_each_with_its_audit_entry() {
    let app = app_on(&fresh_postgres().await).await;
    send(&app, "PUT", "/api/v1/customers/acme", Some(customer())).await;
    let posts = (0..40).map(|request| {
        let router = app.router.clone();
        let key = app.operator.clone();
        tokio::spawn(async move {
            let batch: Vec<Value> = (0..25)
                .map(|n| usage(n, &format!("g-{request}-{n}")))
                .collect();
            let request = axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/events")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {key}"))
                .body(axum::body::Body::from(Value::from(batch).to_string()))
                .unwrap();
            tower::ServiceExt::oneshot(router, request)
                .await
                .unwrap()
                .status()
        })
    });
    for post in posts {
        assert_eq!(post.await.unwrap(), StatusCode::ACCEPTED);
    }
    let events = app.state.store().events_for("acme").await.unwrap();
    assert_eq!(events.len(), 1000);
    let (_, broken) = app.state.store().verify_audit().await.unwrap();
    assert_eq!(broken, None);
    let page = app.state.store().audit_page(0, 5000).await.unwrap();
    let ingests = page
        .iter()
        .filter(|r| r.entry.action == "event.ingest")
        .count();
    assert_eq!(ingests, 1000);
}
