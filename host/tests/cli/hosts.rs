//! Several `vigil serve` processes on one PostgreSQL database: one killed
//! with SIGKILL mid-load, one paused with SIGSTOP while it leads, a plugin
//! deployed with the command line on one host and served by the others.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::{free_port, http, vigil};

/// The PostgreSQL server the tests use (a database of their own is
/// created on it).
fn postgres_server() -> String {
    std::env::var("VIGIL_TEST_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A new, empty database; dropped when the value is.
struct Database {
    name: String,
    url: String,
}

impl Database {
    fn create(runtime: &tokio::runtime::Runtime) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vigil_hosts_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        runtime.block_on(async {
            let admin = PgPool::connect(&format!("{}/postgres", postgres_server()))
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for the multi-host tests: {e}"));
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .unwrap();
        });
        let url = format!("{}/{name}", postgres_server());
        Self { name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().ok()?;
            runtime.block_on(async {
                let admin = PgPool::connect(&format!("{}/postgres", postgres_server()))
                    .await
                    .ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A `vigil serve` process.
struct Host {
    id: String,
    port: u16,
    child: Child,
}

impl Host {
    fn start(db: &Database, id: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let mut child = vigil()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &db.url, "--host-id", id])
            .args(["--lease-ttl", "2", "--registry-poll-ms", "200"])
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..300 {
            if http_ok(port, "/readyz") {
                return Self {
                    id: id.into(),
                    port,
                    child,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("host {id} did not become ready");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.id);
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn stop(mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "host {} did not stop cleanly", self.id);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_ok(port: u16, path: &str) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        && http(port, "GET", path, None, None).0 == 200
}

fn admin_key(db: &Database) -> String {
    let output = vigil()
        .args([
            "keys",
            "create",
            "--role",
            "admin",
            "--database-url",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn eventually(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within {seconds} s");
}

fn query_i64(runtime: &tokio::runtime::Runtime, pool: &PgPool, sql: &str) -> i64 {
    runtime
        .block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(pool))
        .unwrap()
}

fn owners(runtime: &tokio::runtime::Runtime, pool: &PgPool) -> Vec<(String, i64)> {
    runtime
        .block_on(
            sqlx::query_as(
                "SELECT owner, COUNT(*) FROM partitions WHERE lease_until > (extract(epoch from now()) * 1000)::bigint
                 GROUP BY owner ORDER BY owner",
            )
            .fetch_all(pool),
        )
        .unwrap()
}

fn customer(port: u16, key: &str, id: &str) {
    let body = r#"{"name":"Co","tier":"mid-market","industry":"technology","licensed_seats":100}"#;
    let (status, answer) = http(
        port,
        "PUT",
        &format!("/api/v1/customers/{id}"),
        Some(key),
        Some(body),
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn three_hosts_evaluate_every_acknowledged_event_exactly_once_when_one_is_killed_mid_load() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = Database::create(&runtime);
    let key = admin_key(&db);
    let hosts: Vec<Host> = ["h1", "h2", "h3"]
        .iter()
        .map(|id| Host::start(&db, id, &[]))
        .collect();
    let pool = runtime.block_on(PgPool::connect(&db.url)).unwrap();
    eventually(20, "the partitions shared by three hosts", || {
        owners(&runtime, &pool).len() == 3
    });
    for n in 0..30 {
        customer(hosts[n % 3].port, &key, &format!("acct-{n}"));
    }

    let mut acknowledged = BTreeSet::new();
    let mut hosts: Vec<Option<Host>> = hosts.into_iter().map(Some).collect();
    for batch in 0..60 {
        if batch == 20 {
            // SIGKILL, most likely mid-batch: no goodbye, leases left to run out.
            hosts[1].take().unwrap().kill_9();
        }
        let live: Vec<u16> = hosts.iter().flatten().map(|h| h.port).collect();
        let port = live[batch % live.len()];
        let events: Vec<String> = (0..20)
            .map(|n| {
                format!(
                    r#"{{"id":"b{batch}-{n}","account_id":"acct-{}","kind":"usage.daily","occurred_at":"2026-06-01T10:00:00Z","payload":{{"active_users":{n}}}}}"#,
                    (batch + n) % 30
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
        acknowledged.extend((0..20).map(|n| format!("b{batch}-{n}")));
    }
    assert_eq!(acknowledged.len(), 1200);

    // The dead host's partitions are taken over and everything evaluated.
    eventually(30, "every event evaluated", || {
        query_i64(
            &runtime,
            &pool,
            "SELECT COUNT(*) FROM events e JOIN partitions p ON p.part = e.part WHERE e.seq > p.evaluated_seq",
        ) == 0
    });
    let live_owners: Vec<String> = owners(&runtime, &pool)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(live_owners, ["h1", "h3"]);
    let stored: BTreeSet<String> = runtime
        .block_on(sqlx::query_scalar("SELECT id FROM events").fetch_all(&pool))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, acknowledged);
    let scored_other_than_once = query_i64(
        &runtime,
        &pool,
        "SELECT COUNT(*) FROM (SELECT e.id FROM events e LEFT JOIN scores s ON s.event_id = e.id AND s.name = 'health'
                              GROUP BY e.id HAVING COUNT(s.seq) <> 1) AS x",
    );
    assert_eq!(scored_other_than_once, 0, "events not scored exactly once");
    for host in hosts.into_iter().flatten() {
        host.stop();
    }
    let verify = vigil()
        .args(["audit", "verify", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// `bytes` with a custom section appended: the same plugin, another digest.
fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"vigil-test-variant";
    let mut payload = vec![u8::try_from(name.len()).unwrap()];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).unwrap());
    out.extend_from_slice(&payload);
    out
}

#[test]
fn a_plugin_deployed_on_one_host_serves_on_the_others_and_a_paused_leader_writes_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = Database::create(&runtime);
    let key = admin_key(&db);
    let ticking = ["--tick-every", "1"];
    let a = Host::start(&db, "host-a", &ticking);
    let b = Host::start(&db, "host-b", &ticking);
    let pool = runtime.block_on(PgPool::connect(&db.url)).unwrap();
    customer(a.port, &key, "acme");

    // Deploy with the command line on host a; host b serves it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("health-score.wasm");
    std::fs::write(
        &file,
        variant(vigil_host::standard::STANDARD_PLUGINS[0].1, "cli"),
    )
    .unwrap();
    let digest = vigil_host::runtime::digest(&std::fs::read(&file).unwrap());
    let server_a = format!("http://127.0.0.1:{}", a.port);
    let server_b = format!("http://127.0.0.1:{}", b.port);
    let deploy = vigil()
        .args(["plugin", "deploy"])
        .arg(&file)
        .args(["--server", &server_a, "--key", &key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&deploy.stdout);
    assert!(
        deploy.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    assert!(stdout.starts_with("deployed "), "{stdout}");
    let name = vigil_host::standard::STANDARD_PLUGINS[0].0;
    eventually(5, "host b serving the deploy", || {
        let (_, body) = http(
            b.port,
            "GET",
            &format!("/api/v1/plugins/{name}"),
            Some(&key),
            None,
        );
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        detail["serving"]["digest"] == digest.as_str()
    });
    let list = vigil()
        .args(["plugin", "list", "--server", &server_b, "--key", &key])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success());
    assert!(listed.contains(&digest[..12]), "{listed}");
    let rollback = vigil()
        .args([
            "plugin", "rollback", name, "--server", &server_b, "--key", &key,
        ])
        .output()
        .unwrap();
    assert!(
        rollback.status.success(),
        "{}",
        String::from_utf8_lossy(&rollback.stderr)
    );
    assert!(String::from_utf8_lossy(&rollback.stdout).contains("now serves"));
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not a component").unwrap();
    let refused = vigil()
        .args(["plugin", "deploy"])
        .arg(&garbage)
        .args(["--server", &server_a, "--key", &key])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("422") && stderr.contains("refused"),
        "{stderr}"
    );

    // Pause the leader past its lease: the other host takes the lead and
    // ticks; the paused one, resumed, writes nothing.
    let leader_of = || -> String {
        runtime
            .block_on(sqlx::query_scalar("SELECT owner FROM leader_lease").fetch_one(&pool))
            .unwrap()
    };
    eventually(10, "a leader elected", || !leader_of().is_empty());
    let (leader, follower) = if leader_of() == "host-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    leader.signal("-STOP");
    let stopped_at = vigil_host::store::now_ms();
    eventually(15, "the follower taking the lead", || {
        leader_of() == follower.id
    });
    std::thread::sleep(Duration::from_secs(2));
    leader.signal("-CONT");
    std::thread::sleep(Duration::from_secs(3));
    let ticks_by = |host: &str, since: i64| {
        query_i64(
            &runtime,
            &pool,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'event.ingest' AND actor = 'host:{host}'
                 AND origin LIKE 'scheduler%' AND at > {since}"
            ),
        )
    };
    assert_eq!(
        ticks_by(&leader.id, stopped_at),
        0,
        "the paused leader wrote ticks"
    );
    assert!(
        ticks_by(&follower.id, stopped_at) > 0,
        "the new leader did not tick"
    );
    assert_eq!(leader_of(), follower.id);
    a.stop();
    b.stop();
}
