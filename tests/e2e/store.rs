//! The store, against both backends: SQLite in a temporary file and
//! PostgreSQL (at `VIGIL_TEST_POSTGRES_URL`, default the local `test`
//! database) in a fresh schema per test. PostgreSQL tests never skip: a
//! machine without PostgreSQL fails them.

use std::sync::atomic::{AtomicU32, Ordering};

use vigil_host::history::DAY_MS;
use vigil_host::pipeline::{PluginRef, ScoreState};
use vigil_host::runtime::ScoreCard;
use vigil_host::runtime::bindings::types::{Industry, Rag, Tier};
use vigil_host::store::{AuditEntry, NewEvent, Store, StoreError, Stored};

use crate::support::{NOW, account, event};

fn postgres_url() -> String {
    std::env::var("VIGIL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection URL to a new, empty schema of the test database.
pub async fn fresh_postgres() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "vigil_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        vigil_host::store::now_ms()
    );
    let admin = sqlx::PgPool::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is required for the store tests: {e}",
                postgres_url()
            )
        });
    // Schemas of earlier runs (older than an hour) are dropped.
    let old: Vec<(String,)> = sqlx::query_as(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'vigil\\_test\\_%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    let hour_ago = vigil_host::store::now_ms() - 3_600_000;
    for (name,) in old {
        let created = name
            .rsplit('_')
            .next()
            .and_then(|ms| ms.parse::<i64>().ok());
        if created.is_some_and(|ms| ms < hour_ago) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&admin)
                .await;
        }
    }
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let separator = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{}{separator}options=-c%20search_path%3D{schema}",
        postgres_url()
    )
}

/// Both backends, fresh: (name, url, store). The temporary directory lives
/// as long as the returned guard.
async fn backends() -> (tempfile::TempDir, Vec<(String, Store)>) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let postgres = fresh_postgres().await;
    let stores = vec![
        (
            sqlite_url.clone(),
            Store::connect(&sqlite_url).await.unwrap(),
        ),
        (postgres.clone(), Store::connect(&postgres).await.unwrap()),
    ];
    (dir, stores)
}

fn audit(action: &str, resource: &str) -> AuditEntry {
    AuditEntry {
        at: NOW,
        actor: "key:test".into(),
        action: action.into(),
        resource: resource.into(),
        origin: "127.0.0.1".into(),
        success: true,
        details: serde_json::json!({"note": "test"}),
    }
}

fn new_event(n: usize, key: Option<&str>, logins: u32) -> NewEvent {
    let event = event(
        "acme",
        n,
        "usage.daily",
        NOW + n as i64,
        serde_json::json!({"logins": logins}),
    );
    NewEvent {
        body: format!("{}|{}", event.kind, event.payload),
        generated_id: false,
        event,
        idempotency_key: key.map(str::to_string),
    }
}

fn event_audit(new: &NewEvent) -> AuditEntry {
    audit("event.ingest", &format!("event:{}", new.event.id))
}

async fn sql(store: &Store, statement: &str) {
    match store {
        Store::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        Store::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

#[tokio::test]
async fn migrations_apply_on_start_and_a_reopened_store_keeps_its_data() {
    let (_dir, stores) = backends().await;
    for (url, store) in stores {
        store.ping().await.unwrap();
        let acme = account("acme", Tier::Enterprise, Industry::Healthcare, 100, 60);
        store
            .upsert_account(&acme, audit("account.upsert", "account:acme"))
            .await
            .unwrap();
        drop(store);
        let reopened = Store::connect(&url).await.unwrap();
        assert_eq!(reopened.account("acme").await.unwrap(), Some(acme), "{url}");
        assert_eq!(reopened.account("nobody").await.unwrap(), None);
    }
}

#[tokio::test]
async fn an_idempotency_key_seen_again_with_the_same_body_writes_nothing_and_with_another_body_conflicts()
 {
    let (_dir, stores) = backends().await;
    for (url, store) in stores {
        let first = store
            .insert_events(&[new_event(1, Some("k1"), 5)], event_audit)
            .await
            .unwrap();
        let Stored::New { seq } = first[0] else {
            panic!("{url}: {first:?}");
        };
        let again = store
            .insert_events(&[new_event(1, Some("k1"), 5)], event_audit)
            .await
            .unwrap();
        assert_eq!(
            again[0],
            Stored::Duplicate {
                first_event: "acme-1".into(),
                seq
            },
            "{url}"
        );
        let conflict = store
            .insert_events(
                &[new_event(2, None, 1), new_event(1, Some("k1"), 6)],
                event_audit,
            )
            .await;
        assert!(
            matches!(conflict, Err(StoreError::IdempotencyConflict { .. })),
            "{url}: {conflict:?}"
        );
        // The conflicting batch wrote nothing, not even its first event.
        assert_eq!(store.events_for("acme").await.unwrap().len(), 1, "{url}");
        let (entries, broken) = store.verify_audit().await.unwrap();
        assert_eq!((entries, broken), (1, None), "one event, one audit entry");
    }
}

#[tokio::test]
async fn an_event_id_reused_with_another_body_conflicts() {
    let (_dir, stores) = backends().await;
    for (url, store) in stores {
        store
            .insert_events(&[new_event(1, None, 5)], event_audit)
            .await
            .unwrap();
        let same = store
            .insert_events(&[new_event(1, None, 5)], event_audit)
            .await
            .unwrap();
        assert!(matches!(same[0], Stored::Duplicate { .. }), "{url}");
        let other = store
            .insert_events(&[new_event(1, None, 9)], event_audit)
            .await;
        assert!(
            matches!(other, Err(StoreError::EventIdConflict(_))),
            "{url}: {other:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_of_events_commits_with_one_audit_entry_each_in_time_order() {
    let (_dir, stores) = backends().await;
    for (url, store) in stores {
        let batch: Vec<_> = (0..50)
            .rev()
            .map(|n| new_event(n, None, n as u32))
            .collect();
        let stored = store.insert_events(&batch, event_audit).await.unwrap();
        assert!(
            stored.iter().all(|s| matches!(s, Stored::New { .. })),
            "{url}"
        );
        let events = store.events_for("acme").await.unwrap();
        assert_eq!(events.len(), 50);
        assert!(
            events
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at)
        );
        assert_eq!(store.verify_audit().await.unwrap(), (50, None), "{url}");
        let page = store.audit_page(10, 5).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [11, 12, 13, 14, 15]
        );
        assert_eq!(
            page[0].prev_hash,
            store.audit_page(9, 1).await.unwrap()[0].hash
        );
    }
}

#[tokio::test]
async fn recorded_scores_come_back_in_order_and_stale_ones_stay_out_of_the_history() {
    let (_dir, stores) = backends().await;
    for (url, store) in stores {
        for (n, value) in [70.0, 55.5, 42.25].into_iter().enumerate() {
            let score = ScoreState {
                stale: n == 2,
                ..health_at(NOW + n as i64, value)
            };
            store.record_score("acme", &score).await.unwrap();
        }
        let history = store.fresh_scores_for("acme").await.unwrap();
        assert_eq!(
            history,
            [
                ("health".to_string(), NOW, 70.0),
                ("health".to_string(), NOW + 1, 55.5)
            ],
            "{url}"
        );
    }
}

/// A health score of `value` computed at `at`.
fn health_at(at: i64, value: f64) -> ScoreState {
    ScoreState {
        card: ScoreCard {
            name: "health".into(),
            value,
            band: "stable".into(),
            rag: Rag::Yellow,
            factors: vec![],
        }
        .into(),
        plugin: PluginRef::new("health-score", "0.1.0", "ab".repeat(32)),
        computed_at: at,
        stale: false,
    }
}

#[tokio::test]
async fn trend_compares_the_latest_score_with_the_newest_one_at_least_so_many_days_older() {
    let (_dir, stores) = backends().await;
    let ages = [7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS];
    for (url, store) in stores {
        // Scores 100, 40, 20 and 8 days before the latest; two rows share
        // the 8-day mark and two the latest time, where the later row wins.
        for (days_before, value) in [
            (100, 30.0),
            (40, 45.0),
            (20, 50.0),
            (8, 58.0),
            (8, 60.0),
            (0, 64.0),
            (0, 70.0),
        ] {
            let at = NOW - days_before * DAY_MS;
            store
                .record_score("acme", &health_at(at, value))
                .await
                .unwrap();
        }
        let (latest, trend) = store
            .latest_score_with_trend("acme", "health", ages)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (latest.card.value, latest.computed_at),
            (70.0, NOW),
            "{url}"
        );
        assert_eq!(trend, [Some(10.0), Some(25.0), Some(40.0)], "{url}");

        // Nothing old enough: no trend, and no score at all: nothing.
        for (hours_before, value) in [(30, 50.0), (0, 55.0)] {
            let at = NOW - hours_before * 3_600_000;
            store
                .record_score("young", &health_at(at, value))
                .await
                .unwrap();
        }
        let (latest, trend) = store
            .latest_score_with_trend("young", "health", ages)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.card.value, 55.0, "{url}");
        assert_eq!(trend, [None, None, None], "{url}");
        assert!(
            store
                .latest_score_with_trend("nobody", "health", ages)
                .await
                .unwrap()
                .is_none(),
            "{url}"
        );
    }
}

/// Five audit entries, then `tamper`, then the first bad sequence number.
async fn tampered(tamper: &[&str]) -> Vec<Option<i64>> {
    let (_dir, stores) = backends().await;
    let mut results = Vec::new();
    for (_, store) in stores {
        for n in 1..=5 {
            store
                .audit(audit("test.entry", &format!("thing:{n}")))
                .await
                .unwrap();
        }
        assert_eq!(store.verify_audit().await.unwrap(), (5, None));
        for statement in tamper {
            sql(&store, statement).await;
        }
        results.push(store.verify_audit().await.unwrap().1.map(|b| b.seq));
    }
    results
}

#[tokio::test]
async fn an_updated_audit_entry_is_detected_at_its_sequence_number() {
    let results = tampered(&["UPDATE audit_log SET actor = 'key:intruder' WHERE seq = 3"]).await;
    assert_eq!(results, [Some(3), Some(3)]);
}

#[tokio::test]
async fn a_deleted_audit_entry_is_detected_in_the_middle_and_at_the_end() {
    assert_eq!(
        tampered(&["DELETE FROM audit_log WHERE seq = 2"]).await,
        [Some(2), Some(2)]
    );
    assert_eq!(
        tampered(&["DELETE FROM audit_log WHERE seq = 5"]).await,
        [Some(5), Some(5)]
    );
}

#[tokio::test]
async fn an_inserted_audit_entry_is_detected() {
    let results = tampered(&[
        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100",
        "INSERT INTO audit_log (seq, at, actor, action, resource, origin, success, details, prev_hash, hash)
         SELECT 3, at, 'key:intruder', action, resource, origin, success, details, hash, hash FROM audit_log WHERE seq = 2",
    ])
    .await;
    assert_eq!(results, [Some(3), Some(3)]);
}

#[tokio::test]
async fn an_entry_appended_without_moving_the_head_is_detected_at_the_head() {
    // The walk stops at the head it read first; an entry beyond it counts
    // as appended only if the head has moved since.
    let results = tampered(&[
        "INSERT INTO audit_log (seq, at, actor, action, resource, origin, success, details, prev_hash, hash)
         SELECT 6, at, 'key:intruder', action, resource, origin, success, details, hash, hash FROM audit_log WHERE seq = 5",
    ])
    .await;
    assert_eq!(results, [Some(5), Some(5)]);
}

#[tokio::test]
async fn reordered_audit_entries_are_detected() {
    let results = tampered(&[
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    ])
    .await;
    assert_eq!(results, [Some(2), Some(2)]);
}

#[tokio::test]
async fn a_database_url_of_another_kind_is_refused() {
    let error = Store::connect("mysql://localhost/x").await.unwrap_err();
    assert!(matches!(error, StoreError::UnsupportedUrl(_)), "{error}");
}
