//! `vigil`: the command line of the vigil host.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use std::time::Duration;

use hyper::Method;
use vigil_host::api::HostOptions;
use vigil_host::client::Client;
use vigil_host::connectors::Connectors;
use vigil_host::demo;
use vigil_host::lifecycle::{Breaker, LifecycleConfig, PluginSource};
use vigil_host::pipeline::{Pipeline, PluginSet};
use vigil_host::plugin_dir::{load_directory, load_standard};
use vigil_host::runtime::{InstanceMode, Limits, Runtime};
use vigil_host::scaffold;
use vigil_host::service::HostConfig;
use vigil_host::store::{ChainBreak, Role, Store};

/// The server allocates and frees many small values per event (JSON,
/// audit entries, plugin results); mimalloc keeps that off glibc's
/// consolidating free lists, which took a quarter of the ingest CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vigil: a WebAssembly plugin-hosted automation runtime for customer-success
/// and sales operations.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a portfolio from a fixed seed, run it through the plugins and
    /// print a summary.
    Demo {
        /// Accounts to generate.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// The portfolio's seed: the same seed gives the same portfolio.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Load plugins from this directory instead of the embedded
        /// standard plugins.
        #[arg(long, env = "VIGIL_PLUGINS")]
        plugins: Option<PathBuf>,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Serve the HTTP API: load the plugins, open the store, evaluate
    /// incoming events.
    Serve {
        /// The address to listen on.
        #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// `postgres://…` or `sqlite://PATH` (default: `vigil.db` in the data directory).
        #[arg(long, env = "VIGIL_DATABASE_URL")]
        database_url: Option<String>,
        /// The data directory.
        #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
        data_dir: PathBuf,
        /// Deploy the plugins of this directory, and watch it: a new or
        /// changed `.wasm` file is deployed, a removed one unloaded
        /// (default: register the embedded standard plugins).
        #[arg(long, env = "VIGIL_PLUGINS")]
        plugins: Option<PathBuf>,
        /// Serve only what the plugin registry holds: register neither a
        /// directory nor the standard plugins (another host or the API
        /// deploys them).
        #[arg(long, conflicts_with = "plugins")]
        registry_only: bool,
        /// This host's id among the hosts sharing the database, stable
        /// across its restarts (default: HOSTNAME:PORT).
        #[arg(long, env = "VIGIL_HOST_ID")]
        host_id: Option<String>,
        /// Seconds a lease (partitions, leadership) lasts unrenewed: a host
        /// that dies is replaced after this.
        #[arg(long, env = "VIGIL_LEASE_TTL", default_value_t = 5)]
        lease_ttl: u64,
        /// Seconds between the scheduler's ticks (one `schedule.tick`
        /// event per account, from the leader).
        #[arg(long, env = "VIGIL_TICK_EVERY", default_value_t = 86_400)]
        tick_every: u64,
        /// Traps or limit hits within the window that quarantine a plugin
        /// version.
        #[arg(long, env = "VIGIL_QUARANTINE_AFTER", default_value_t = 5)]
        quarantine_after: usize,
        /// The circuit breaker's window, in seconds.
        #[arg(long, env = "VIGIL_QUARANTINE_WINDOW", default_value_t = 60)]
        quarantine_window: u64,
        /// Milliseconds between polls of the plugin registry (the guarantee
        /// behind its notifications).
        #[arg(long, env = "VIGIL_REGISTRY_POLL_MS", default_value_t = 1000)]
        registry_poll_ms: u64,
        /// A webhook connector, NAME=URL (http://), where webhook intents
        /// naming NAME are posted; repeatable.
        #[arg(long = "connector", env = "VIGIL_CONNECTORS", value_delimiter = ',')]
        connectors: Vec<String>,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key and print it, alone, on stdout. Only its hash is
    /// stored: the key cannot be shown again.
    Create {
        /// viewer (reads), operator (also writes: events, interventions,
        /// plugins) or admin (also the audit log and keys).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["viewer", "operator", "admin"]))]
        role: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        label: String,
        /// `postgres://…` or `sqlite://PATH` (default: `vigil.db` in the data directory).
        #[arg(long, env = "VIGIL_DATABASE_URL")]
        database_url: Option<String>,
        /// The data directory.
        #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the whole hash chain: exit 0 when intact, 1 naming the first
    /// entry that breaks it.
    Verify {
        /// `postgres://…` or `sqlite://PATH` (default: `vigil.db` in the data directory).
        #[arg(long, env = "VIGIL_DATABASE_URL")]
        database_url: Option<String>,
        /// The data directory.
        #[arg(long, env = "VIGIL_DATA_DIR", default_value = "vigil-data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a component's world, contract version, describe() and imports,
    /// or the reason the host would refuse it. Exits 1 when refused.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a plugin crate that builds to Wasm and passes its test.
    New {
        /// The plugin's name: lowercase letters, digits and dashes.
        name: String,
        /// scorer, trigger, condition, action, playbook or ruleset.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(scaffold::KINDS))]
        kind: String,
        /// Where to create it (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The vigil-sdk crate to depend on (default: the SDK this binary
        /// was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Write the embedded standard plugins into a directory as `.wasm`
    /// files, for `--plugins` or for deploying.
    ExportStandard {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Deploy a component to a running server: it is checked and run as a
    /// canary there, then serves on every host. Exits 1 when refused.
    Deploy {
        /// The component (`.wasm`).
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the plugins of a running server's registry.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Roll a plugin back, to the version that served before the active
    /// one or to `--to`.
    Rollback {
        /// The plugin's name.
        name: String,
        /// A version or digest to roll back to.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Release a quarantined version (a rollback can then serve it).
    Release {
        /// The plugin's name.
        name: String,
        /// The quarantined version or digest.
        version: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Which server to talk to.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "VIGIL_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API key (operator for deploy, rollback and release; viewer for list).
    #[arg(long, env = "VIGIL_KEY", hide_env_values = true)]
    key: Option<String>,
}

impl ServerArgs {
    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.server, self.key.clone())?)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo {
            accounts,
            seed,
            threads,
            plugins,
        } => run_demo(accounts, seed, threads, plugins),
        Command::Serve {
            listen,
            database_url,
            data_dir,
            plugins,
            registry_only,
            host_id,
            lease_ttl,
            tick_every,
            quarantine_after,
            quarantine_window,
            registry_poll_ms,
            connectors,
        } => {
            let connectors = Connectors::parse(&connectors)?;
            let source = match (plugins, registry_only) {
                (Some(dir), _) => PluginSource::Directory(dir),
                (None, true) => PluginSource::RegistryOnly,
                (None, false) => PluginSource::Standard,
            };
            let host_id = host_id.unwrap_or_else(|| default_host_id(&listen));
            let options = HostOptions {
                host: HostConfig {
                    host_id,
                    lease_ttl: Duration::from_secs(lease_ttl.max(1)),
                    tick_every: Duration::from_secs(tick_every.max(1)),
                    connectors,
                },
                plugins: source,
                lifecycle: LifecycleConfig {
                    breaker: Breaker {
                        faults: quarantine_after.max(1),
                        window: Duration::from_secs(quarantine_window.max(1)),
                    },
                    poll_every: Duration::from_millis(registry_poll_ms.max(10)),
                    ..LifecycleConfig::default()
                },
            };
            serve(&listen, database_url, &data_dir, options)
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    database_url,
                    data_dir,
                },
        } => {
            let url = database_url
                .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("vigil.db").display()));
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let store = Store::connect(&url).await.with_context(|| format!("opening {url}"))?;
                let (entries, broken) = store.verify_audit().await?;
                Ok(match broken {
                    None => {
                        println!("audit chain intact: {entries} entries verified");
                        ExitCode::SUCCESS
                    }
                    Some(ChainBreak { seq, reason }) => {
                        println!("audit chain broken at entry {seq}: {reason} ({entries} entries verified before it)");
                        ExitCode::FAILURE
                    }
                })
            })
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    role,
                    label,
                    database_url,
                    data_dir,
                },
        } => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role}"))?;
            if database_url.is_none() {
                std::fs::create_dir_all(&data_dir).with_context(|| {
                    format!("creating the data directory {}", data_dir.display())
                })?;
            }
            let url = database_url.unwrap_or_else(|| default_database(&data_dir));
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let store = Store::connect(&url)
                    .await
                    .with_context(|| format!("opening {url}"))?;
                let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
                let (key, record) = store
                    .create_api_key(role, &label, &format!("cli:{user}"), "cli")
                    .await?;
                println!("{key}");
                eprintln!("created {} key {}", role.as_str(), record.id);
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Plugin { command } => match command {
            PluginCommand::Check { file, json } => check(&file, json),
            PluginCommand::New {
                name,
                kind,
                dir,
                sdk,
            } => {
                let sdk = match sdk {
                    Some(sdk) => sdk,
                    None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
                };
                let sdk = std::fs::canonicalize(&sdk).with_context(|| {
                    format!(
                        "the SDK is not at {}; pass --sdk PATH/TO/vigil/sdk",
                        sdk.display()
                    )
                })?;
                let root = scaffold::scaffold(&dir, &name, &kind, &sdk)?;
                println!("created {kind} plugin `{name}` in {}", root.display());
                println!("  cd {}", root.display());
                println!("  cargo test");
                println!("  cargo build --target wasm32-wasip2 --release");
                println!(
                    "  vigil plugin check target/wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                );
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::ExportStandard { dir } => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for (name, bytes) in vigil_host::standard::STANDARD_PLUGINS {
                    let path = dir.join(format!("{name}.wasm"));
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Deploy { file, server } => {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let client = server.client()?;
                let answer: serde_json::Value = on_tokio(client.call(
                    Method::POST,
                    "/api/v1/plugins",
                    Some("application/wasm"),
                    bytes,
                ))?;
                let deployed = &answer["deployed"];
                if answer["already_active"].as_bool() == Some(true) {
                    println!(
                        "{} {} ({}) was active already",
                        deployed["name"].as_str().unwrap_or("?"),
                        deployed["version"].as_str().unwrap_or("?"),
                        short(deployed["digest"].as_str().unwrap_or("?")),
                    );
                } else {
                    let replaced = match answer["replaced"].as_object() {
                        Some(r) => format!(
                            ", replacing {} ({})",
                            r["version"].as_str().unwrap_or("?"),
                            short(r["digest"].as_str().unwrap_or("?"))
                        ),
                        None => String::new(),
                    };
                    println!(
                        "deployed {} {} ({}){replaced}",
                        deployed["name"].as_str().unwrap_or("?"),
                        deployed["version"].as_str().unwrap_or("?"),
                        short(deployed["digest"].as_str().unwrap_or("?")),
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::List { server } => {
                let client = server.client()?;
                let list: serde_json::Value = on_tokio(client.get("/api/v1/plugins"))?;
                println!(
                    "{:<24} {:<10} {:<10} {:<14} {:<10} SERVING HERE",
                    "PLUGIN", "KIND", "ACTIVE", "DIGEST", "VERSIONS"
                );
                for plugin in list["plugins"].as_array().into_iter().flatten() {
                    let active = &plugin["active"];
                    let serving = &plugin["serving"];
                    println!(
                        "{:<24} {:<10} {:<10} {:<14} {:<10} {}",
                        plugin["name"].as_str().unwrap_or("?"),
                        plugin["kind"].as_str().unwrap_or("?"),
                        active["version"].as_str().unwrap_or("-"),
                        active["digest"]
                            .as_str()
                            .map(short)
                            .unwrap_or_else(|| "-".into()),
                        plugin["versions"],
                        serving["version"].as_str().unwrap_or("-"),
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Rollback { name, to, server } => {
                let client = server.client()?;
                let active: serde_json::Value = on_tokio(client.post_json(
                    &format!("/api/v1/plugins/{name}/rollback"),
                    &serde_json::json!({"to": to}),
                ))?;
                println!(
                    "{name} now serves {} ({})",
                    active["version"].as_str().unwrap_or("?"),
                    short(active["digest"].as_str().unwrap_or("?"))
                );
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Release {
                name,
                version,
                server,
            } => {
                let client = server.client()?;
                let released: serde_json::Value = on_tokio(client.post_json(
                    &format!("/api/v1/plugins/{name}/release"),
                    &serde_json::json!({"version": version}),
                ))?;
                println!(
                    "{name} {} ({}) released from quarantine; roll back to it to serve it",
                    released["version"].as_str().unwrap_or("?"),
                    short(released["digest"].as_str().unwrap_or("?"))
                );
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

/// The first 12 digits of a digest.
fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// Runs one client call on a runtime of its own.
fn on_tokio<T>(
    call: impl std::future::Future<Output = Result<T, vigil_host::client::ClientError>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(call)?)
}

/// `HOSTNAME:PORT`: stable across restarts of the same server, distinct
/// between servers on one machine.
fn default_host_id(listen: &str) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let port = listen.rsplit(':').next().unwrap_or(listen);
    format!("{hostname}:{port}")
}

/// `sqlite://<data dir>/vigil.db`.
fn default_database(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("vigil.db").display())
}

fn load_plugins(
    runtime: &Runtime,
    plugins: Option<PathBuf>,
) -> anyhow::Result<Vec<std::sync::Arc<vigil_host::runtime::Plugin>>> {
    let loaded = match plugins {
        Some(dir) => {
            let loaded = load_directory(runtime, &dir, InstanceMode::Warm)?;
            for (file, error) in &loaded.refused {
                eprintln!("refused {file}: {error}");
            }
            loaded.plugins
        }
        None => load_standard(runtime, InstanceMode::Warm)
            .map_err(|(name, error)| anyhow::anyhow!("standard plugin {name} refused: {error}"))?,
    };
    if loaded.is_empty() {
        bail!("no plugin loaded");
    }
    Ok(loaded)
}

fn serve(
    listen: &str,
    database_url: Option<String>,
    data_dir: &std::path::Path,
    options: HostOptions,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let url = database_url.unwrap_or_else(|| default_database(data_dir));
    let runtime = std::sync::Arc::new(Runtime::new(Limits::default())?);
    let tokio = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    tokio.block_on(async {
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let host_id = options.host.host_id.clone();
        let state = vigil_host::api::AppState::start(store, runtime, options).await?;
        let app = vigil_host::api::router(state.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        eprintln!(
            "vigil serving on http://{} as host {host_id}",
            listener.local_addr()?
        );
        // Ctrl-C or SIGTERM: stop accepting, finish the requests in flight.
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let interrupt = tokio::signal::ctrl_c();
                #[cfg(unix)]
                {
                    let mut terminate = match tokio::signal::unix::signal(
                        tokio::signal::unix::SignalKind::terminate(),
                    ) {
                        Ok(signal) => signal,
                        Err(_) => return std::mem::drop(interrupt.await),
                    };
                    tokio::select! {
                        _ = interrupt => {}
                        _ = terminate.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                let _ = interrupt.await;
            })
            .await?;
        // Requests are drained; commit what is queued, evaluate what is
        // committed, deliver what is planned, give the leases back.
        state.shutdown().await;
        eprintln!("vigil stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn run_demo(
    accounts: usize,
    seed: u64,
    threads: Option<usize>,
    plugins: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(Limits::default())?;
    let loaded = load_plugins(&runtime, plugins)?;
    let described: Vec<(String, String, u64)> = loaded
        .iter()
        .map(|p| {
            (
                p.label().to_string(),
                p.digest().to_string(),
                p.fuel_budget(),
            )
        })
        .collect();
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    let pipeline = Pipeline::new(PluginSet::new(loaded));
    let portfolio = demo::generate_portfolio(accounts, seed);
    let report = demo::run(&pipeline, portfolio, threads);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(demo::render(&report, &described).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn check(file: &PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = Runtime::new(Limits::default())?;
    let report = runtime.inspect(&bytes);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", file.display());
        println!("  digest    sha256:{}", report.digest);
        println!("  size      {} bytes", report.size);
        println!(
            "  world     {}",
            report.world.as_deref().unwrap_or("(none)")
        );
        println!(
            "  contract  {}",
            report
                .contract
                .as_deref()
                .map(|v| format!("vigil:plugin@{v}"))
                .unwrap_or_else(|| "(none)".into())
        );
        if let Some(info) = &report.info {
            println!("  describe()");
            println!("    name          {}", info.name);
            println!("    version       {}", info.version);
            println!("    description   {}", info.description);
            let subscribes = if info.subscribes.is_empty() {
                "(every event)".to_string()
            } else {
                info.subscribes.join(", ")
            };
            println!("    subscribes    {subscribes}");
            println!("    config schema {}", info.config_schema);
            println!("    default fuel  {}", info.default_fuel);
            let windows: Vec<String> = report
                .windows
                .iter()
                .map(|w| format!("{} {}d ending {}d ago", w.metric, w.days, w.offset_days))
                .collect();
            if !windows.is_empty() {
                println!("    windows       {}", windows.join(", "));
            }
            if !report.policy_tags.is_empty() {
                println!("    policy tags   {}", report.policy_tags.join(", "));
            }
            for score in &report.scores {
                let names = |names: &[vigil_host::runtime::Text]| match names {
                    [] => "(none)".to_string(),
                    names => names
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                println!("    score         {}", score.name);
                println!("      bands       {}", names(&score.bands));
                println!("      factors     {}", names(&score.factors));
            }
        }
        if let Some(fuel) = report.fuel_budget {
            println!("  fuel budget {fuel} per call");
        }
        if let (Some(memories), Some(initial)) = (report.memories, report.initial_memory_bytes) {
            let cap = runtime.limits().memory_bytes;
            let what = if memories == 1 {
                "1 memory".to_string()
            } else {
                format!("{memories} memories, the largest")
            };
            // Memories are sized in 64 KiB pages, so KiB are exact.
            println!(
                "  memory    {what} starting at {} KiB (capped at {} KiB an instance)",
                initial >> 10,
                cap >> 10
            );
        }
        println!("  imports");
        for import in &report.imports {
            println!("    {import}");
        }
        println!("  exports");
        for export in &report.exports {
            println!("    {export}");
        }
        match &report.refused {
            None => println!("OK: the host loads this plugin"),
            Some(reason) => println!("REFUSED: {reason}"),
        }
    }
    Ok(if report.loads() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
