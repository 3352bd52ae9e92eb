//! The plugin lifecycle: the registry in the store is the truth of which
//! version of each plugin serves; every host converges on it.
//!
//! - **Deploy** (a file dropped in the plugins directory, an upload through
//!   the API): the component is compiled off the async runtime, checked
//!   (world, imports, `describe()`) and run as a canary over fixture data;
//!   only then is it stored and made active. A refused version is logged
//!   and audited, and the previous one keeps serving.
//! - **Swap**: the pipeline's plugin set is replaced atomically
//!   ([`Pipeline::swap`]): an event being evaluated finishes on the set it
//!   started with, the next one uses the new set.
//! - **Converge**: every registry change bumps a clock and notifies
//!   `vigil_plugins` (PostgreSQL); each host listens for the hint and polls
//!   the clock as the guarantee, then loads what became active.
//! - **Quarantine**: a version that traps or hits limits repeatedly within a
//!   window is quarantined by the circuit breaker; the last version that
//!   served before it takes over, with an audit entry and an alert intent.
//! - **Rollback** to the previous or a named version; **release** from
//!   quarantine.

pub mod canary;
pub mod stats;
mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::json;
use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PluginRef, PluginSet};
use crate::runtime::{InstanceMode, InvocationRecord, LoadError, Plugin, Runtime, digest};
use crate::service::InvocationObserver;
use crate::store::{
    AuditEntry, Deployed, NewIntent, NewPluginVersion, PluginVersion, RegistryActor, Store,
    StoreError, VersionState, now_ms,
};
pub use stats::{Breaker, StatsSnapshot, Trip};

/// Where a host's plugins come from, besides the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// The standard plugins embedded in the binary, registered at start.
    Standard,
    /// A directory of `.wasm` files, registered at start and watched: a
    /// new or changed file is deployed, a removed one unloaded.
    Directory(PathBuf),
    /// Only what the registry holds (deployed through the API or by
    /// another host).
    RegistryOnly,
}

/// How the lifecycle behaves.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// When a version is quarantined.
    pub breaker: Breaker,
    /// How often the registry clock is polled (the guarantee behind the
    /// notifications).
    pub poll_every: Duration,
    /// How long the plugins directory must be quiet before its changes are
    /// deployed.
    pub debounce: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            breaker: Breaker::default(),
            poll_every: Duration::from_secs(1),
            debounce: Duration::from_millis(50),
        }
    }
}

/// Why a lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The component failed the load checks.
    #[error("refused: {0}")]
    Refused(#[from] LoadError),
    /// The component faulted in its canary run.
    #[error("refused: {0}")]
    Canary(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No plugin of that name is in the registry.
    #[error("no plugin named `{0}` is in the registry")]
    UnknownPlugin(String),
    /// The plugin has no such version.
    #[error("plugin `{name}` has no version or digest `{version}`")]
    UnknownVersion {
        /// The plugin.
        name: String,
        /// What was asked for.
        version: String,
    },
    /// No earlier version to roll back to.
    #[error("plugin `{0}` has no earlier version that served and is not quarantined")]
    NothingToRollBackTo(String),
    /// The plugins directory could not be opened or watched.
    #[error("plugins directory {path}: {reason}")]
    Directory {
        /// The directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A background compilation failed to run.
    #[error("compiling the component failed to run: {0}")]
    Join(String),
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    /// The version, as the registry has it now.
    pub version: PluginVersion,
    /// Whether it was active already (nothing changed).
    pub already_active: bool,
    /// The version it replaced, if any.
    pub replaced: Option<PluginVersion>,
}

/// The lifecycle of one host's plugins.
pub struct Lifecycle {
    store: Store,
    runtime: Arc<Runtime>,
    pipeline: Arc<Pipeline>,
    host_id: String,
    config: LifecycleConfig,
    metrics: Arc<Metrics>,
    /// Compiled versions by digest: the active ones (and a candidate being
    /// deployed).
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    /// The registry clock the pipeline's set was built at.
    synced_clock: AtomicI64,
    /// One registry change or sync at a time on this host.
    changes: tokio::sync::Mutex<()>,
    stats: stats::Stats,
    trips: mpsc::UnboundedSender<Trip>,
    fixtures: canary::Fixtures,
    stop: signal::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("host_id", &self.host_id)
            .field("synced_clock", &self.synced_clock)
            .finish_non_exhaustive()
    }
}

impl InvocationObserver for Lifecycle {
    fn observe(&self, records: &[InvocationRecord]) {
        for trip in self.stats.record(records) {
            tracing::warn!(plugin = %trip.name, version = %trip.version, reason = %trip.reason, "circuit breaker tripped");
            let _ = self.trips.send(trip);
        }
    }
}

impl Lifecycle {
    /// Registers `source`'s plugins, loads the registry's active set into a
    /// new pipeline, and starts following the registry (and watching the
    /// directory, for [`PluginSource::Directory`]).
    pub async fn start(
        store: Store,
        runtime: Arc<Runtime>,
        source: PluginSource,
        host_id: &str,
        config: LifecycleConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, LifecycleError> {
        let (trips_tx, trips_rx) = mpsc::unbounded_channel();
        let (stop, _) = signal::channel(false);
        let lifecycle = Arc::new(Self {
            store,
            runtime,
            pipeline: Arc::new(Pipeline::new(PluginSet::default())),
            host_id: host_id.to_string(),
            stats: stats::Stats::new(config.breaker),
            config,
            metrics,
            loaded: Mutex::default(),
            synced_clock: AtomicI64::new(-1),
            changes: tokio::sync::Mutex::new(()),
            trips: trips_tx,
            fixtures: canary::Fixtures::default(),
            stop,
            tasks: Mutex::default(),
        });
        let mut tasks = Vec::new();
        match &source {
            PluginSource::Standard => lifecycle.register_standard().await?,
            PluginSource::Directory(path) => {
                let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(|e| {
                    LifecycleError::Directory {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                lifecycle.register_directory(&dir).await?;
                tasks.push(watch::start(lifecycle.clone(), path.clone(), dir)?);
            }
            PluginSource::RegistryOnly => {}
        }
        lifecycle.sync().await?;
        tasks.push(tokio::spawn(follow_registry(lifecycle.clone())));
        tasks.push(tokio::spawn(quarantine_worker(lifecycle.clone(), trips_rx)));
        if let Ok(mut slot) = lifecycle.tasks.lock() {
            slot.extend(tasks);
        }
        Ok(lifecycle)
    }

    /// Stops following the registry and watching the directory.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut tasks| tasks.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// The pipeline this lifecycle keeps serving the active set.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The versions this host serves now.
    pub fn serving(&self) -> Vec<PluginRef> {
        self.pipeline
            .plugins()
            .iter()
            .map(|p| PluginRef::from(p.as_ref()))
            .collect()
    }

    /// The registry clock the serving set was built at.
    pub fn synced_clock(&self) -> i64 {
        self.synced_clock.load(Ordering::Acquire)
    }

    /// This host's statistics of the version `digest`.
    pub fn stats(&self, digest: &str) -> StatsSnapshot {
        self.stats.snapshot(digest)
    }

    fn host_actor(&self, origin: &str) -> RegistryActor {
        RegistryActor {
            actor: format!("host:{}", self.host_id),
            origin: origin.to_string(),
        }
    }

    /// Compiles and checks `bytes` on a blocking thread.
    async fn compile(&self, bytes: Vec<u8>) -> Result<Arc<Plugin>, LifecycleError> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            runtime
                .load(&bytes, BTreeMap::new(), InstanceMode::Warm)
                .map(Arc::new)
        })
        .await
        .map_err(|e| LifecycleError::Join(e.to_string()))?
        .map_err(LifecycleError::from)
    }

    /// Compiles, checks and canary-runs `bytes` (off the async runtime).
    async fn validate(self: &Arc<Self>, bytes: Vec<u8>) -> Result<Arc<Plugin>, LifecycleError> {
        let plugin = self.compile(bytes).await?;
        let this = self.clone();
        let candidate = plugin.clone();
        tokio::task::spawn_blocking(move || {
            canary::run(&this.fixtures, &candidate, &this.pipeline.plugins())
        })
        .await
        .map_err(|e| LifecycleError::Join(e.to_string()))?
        .map_err(LifecycleError::Canary)?;
        Ok(plugin)
    }

    /// Records a refused version: a warning and an audit entry.
    async fn refused(&self, who: &RegistryActor, bytes: &[u8], error: &LifecycleError) {
        tracing::warn!(origin = %who.origin, %error, "plugin version refused");
        self.metrics.deploy("refused");
        let entry = AuditEntry {
            at: now_ms(),
            actor: who.actor.clone(),
            action: "plugin.refused".into(),
            resource: format!("component:{}", digest(bytes)),
            origin: who.origin.clone(),
            success: false,
            details: json!({"reason": error.to_string(), "size": bytes.len()}),
        };
        if let Err(error) = self.store.audit(entry).await {
            tracing::error!(%error, "could not audit the refusal");
        }
    }

    /// Deploys a component: checks it, runs its canary, stores it and makes
    /// it the active version of its name, then serves it. A refused
    /// component is audited and changes nothing.
    #[tracing::instrument(name = "vigil.plugins.deploy", skip_all, fields(origin = %who.origin))]
    pub async fn deploy(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        who: &RegistryActor,
    ) -> Result<DeployReport, LifecycleError> {
        let _change = self.changes.lock().await;
        let plugin = match self.validate(bytes.clone()).await {
            Ok(plugin) => plugin,
            Err(error) => {
                self.refused(who, &bytes, &error).await;
                return Err(error);
            }
        };
        let kind = crate::runtime::kind_name(plugin.kind());
        let new = NewPluginVersion {
            digest: plugin.digest(),
            name: plugin.name(),
            version: &plugin.info().version,
            kind,
            bytes: &bytes,
        };
        let outcome = self.store.deploy_plugin(&new, who).await?;
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(plugin.digest().to_string(), plugin.clone());
        }
        self.sync_locked().await?;
        let version = self
            .store
            .plugin_version(plugin.digest())
            .await?
            .ok_or_else(|| LifecycleError::UnknownPlugin(plugin.name().to_string()))?;
        let (already_active, replaced) = match outcome {
            Deployed::Activated { replaced } => (false, replaced),
            Deployed::AlreadyActive | Deployed::Known(_) => (true, None),
        };
        self.metrics.deploy(if already_active {
            "unchanged"
        } else {
            "deployed"
        });
        tracing::info!(
            plugin = plugin.label(),
            digest = plugin.digest(),
            already_active,
            "plugin deployed"
        );
        Ok(DeployReport {
            version,
            already_active,
            replaced,
        })
    }

    /// Rolls `name` back to `to` (a version or a digest; the newest deploy
    /// of a version if several share it), or to the version that served
    /// before the current one; the version now active.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<&str>,
        who: &RegistryActor,
    ) -> Result<PluginVersion, LifecycleError> {
        let _change = self.changes.lock().await;
        let versions = self.versions_of(name).await?;
        let target = match to {
            Some(wanted) => matching(&versions, wanted).next().ok_or_else(|| {
                LifecycleError::UnknownVersion {
                    name: name.to_string(),
                    version: wanted.to_string(),
                }
            })?,
            None => versions
                .iter()
                .filter(|v| v.state == VersionState::Inactive && v.activated_at > 0)
                .max_by_key(|v| v.activated_at)
                .ok_or_else(|| LifecycleError::NothingToRollBackTo(name.to_string()))?,
        };
        self.store.rollback_plugin(&target.digest, who).await?;
        self.sync_locked().await?;
        self.metrics.deploy("rolled-back");
        Ok(self
            .store
            .plugin_version(&target.digest)
            .await?
            .unwrap_or_else(|| target.clone()))
    }

    /// Releases `name`'s quarantined version `version` (a version or a
    /// digest): it becomes inactive, so a rollback can serve it again.
    pub async fn release(
        &self,
        name: &str,
        version: &str,
        who: &RegistryActor,
    ) -> Result<PluginVersion, LifecycleError> {
        let _change = self.changes.lock().await;
        let versions = self.versions_of(name).await?;
        // The quarantined one when several deploys share the version.
        let target = matching(&versions, version)
            .find(|v| v.state == VersionState::Quarantined)
            .or_else(|| matching(&versions, version).next())
            .ok_or_else(|| LifecycleError::UnknownVersion {
                name: name.to_string(),
                version: version.to_string(),
            })?;
        let released = self.store.release_plugin(&target.digest, who).await?;
        self.stats.rearm(&target.digest);
        Ok(released)
    }

    /// Every version of `name`, newest deploy first; refused when there is
    /// none.
    async fn versions_of(&self, name: &str) -> Result<Vec<PluginVersion>, LifecycleError> {
        let versions = self.store.plugin_versions(Some(name)).await?;
        if versions.is_empty() {
            return Err(LifecycleError::UnknownPlugin(name.to_string()));
        }
        Ok(versions)
    }

    /// Stops serving the plugins deployed from directory file `file` (it
    /// was removed).
    async fn unload_file(&self, file: &str, who: &RegistryActor) -> Result<(), LifecycleError> {
        let _change = self.changes.lock().await;
        let origin = format!("file:{file}");
        for version in self.store.active_plugin_versions().await? {
            if version.origin == origin {
                self.store.unload_plugin(&version.name, who).await?;
                tracing::info!(plugin = %version.name, %file, "plugin unloaded: its file was removed");
                self.metrics.deploy("unloaded");
            }
        }
        self.sync_locked().await
    }

    /// Loads what the registry says is active and swaps it in, if the
    /// registry changed since the last sync.
    pub async fn sync(&self) -> Result<(), LifecycleError> {
        let _change = self.changes.lock().await;
        self.sync_locked().await
    }

    #[tracing::instrument(name = "vigil.plugins.sync", level = "debug", skip_all, fields(host = %self.host_id))]
    async fn sync_locked(&self) -> Result<(), LifecycleError> {
        // The clock first: a change after it is seen by the next poll.
        let clock = self.store.registry_clock().await?;
        let active = self.store.active_plugin_versions().await?;
        let mut plugins = Vec::with_capacity(active.len());
        for version in &active {
            let cached = self
                .loaded
                .lock()
                .ok()
                .and_then(|loaded| loaded.get(&version.digest).cloned());
            let plugin = match cached {
                Some(plugin) => plugin,
                None => {
                    let Some(bytes) = self.store.plugin_bytes(&version.digest).await? else {
                        continue;
                    };
                    match self.compile(bytes).await {
                        Ok(plugin) => {
                            if let Ok(mut loaded) = self.loaded.lock() {
                                loaded.insert(version.digest.clone(), plugin.clone());
                            }
                            plugin
                        }
                        Err(error) => {
                            // Checked where it was deployed; this host's
                            // runtime refuses it (another vigil version?).
                            tracing::error!(plugin = %version.name, digest = %version.digest, %error,
                                "an active version does not load on this host; not serving it");
                            continue;
                        }
                    }
                }
            };
            plugins.push(plugin);
        }
        let digests: HashSet<&str> = active.iter().map(|v| v.digest.as_str()).collect();
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.retain(|digest, _| digests.contains(digest.as_str()));
        }
        let before: Vec<String> = self
            .pipeline
            .plugins()
            .iter()
            .map(|p| p.digest().to_string())
            .collect();
        let set = PluginSet::new(plugins);
        let after: Vec<String> = set.iter().map(|p| p.digest().to_string()).collect();
        if before != after {
            let labels: Vec<&str> = set.iter().map(|p| p.label()).collect();
            tracing::info!(clock, plugins = ?labels, "serving a new plugin set");
            self.pipeline.swap(set);
        }
        self.synced_clock.store(clock, Ordering::Release);
        Ok(())
    }

    /// Registers the embedded standard plugins (known versions keep their
    /// state).
    async fn register_standard(self: &Arc<Self>) -> Result<(), LifecycleError> {
        let who = self.host_actor("standard");
        for (name, bytes) in crate::standard::STANDARD_PLUGINS {
            let plugin = self.compile(bytes.to_vec()).await.map_err(|e| {
                LifecycleError::Canary(format!("standard plugin {name} does not load: {e}"))
            })?;
            self.register(&plugin, bytes, &who).await?;
        }
        Ok(())
    }

    /// Registers every `.wasm` file of the plugins directory that passes
    /// the checks and its canary, and unloads what was deployed from files
    /// that are gone.
    async fn register_directory(self: &Arc<Self>, dir: &Dir) -> Result<(), LifecycleError> {
        let files = watch::wasm_files(dir).map_err(|e| LifecycleError::Directory {
            path: "(plugins)".into(),
            reason: e.to_string(),
        })?;
        for file in &files {
            let who = self.host_actor(&format!("file:{file}"));
            let bytes = match dir.read(file) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(%file, %error, "cannot read a plugin file");
                    continue;
                }
            };
            match self.validate(bytes.clone()).await {
                Ok(plugin) => self.register(&plugin, &bytes, &who).await?,
                Err(error) => self.refused(&who, &bytes, &error).await,
            }
        }
        let present: HashSet<String> = files.into_iter().map(|f| format!("file:{f}")).collect();
        for version in self.store.active_plugin_versions().await? {
            if version.origin.starts_with("file:") && !present.contains(&version.origin) {
                let who = self.host_actor(&version.origin);
                self.store.unload_plugin(&version.name, &who).await?;
                tracing::info!(plugin = %version.name, origin = %version.origin, "plugin unloaded: its file is gone");
            }
        }
        Ok(())
    }

    async fn register(
        &self,
        plugin: &Arc<Plugin>,
        bytes: &[u8],
        who: &RegistryActor,
    ) -> Result<(), LifecycleError> {
        let new = NewPluginVersion {
            digest: plugin.digest(),
            name: plugin.name(),
            version: &plugin.info().version,
            kind: crate::runtime::kind_name(plugin.kind()),
            bytes,
        };
        match self.store.register_plugin(&new, who).await? {
            Deployed::Known(state) => {
                tracing::debug!(
                    plugin = plugin.label(),
                    state = state.as_str(),
                    "plugin known to the registry"
                )
            }
            _ => tracing::info!(plugin = plugin.label(), origin = %who.origin, "plugin registered"),
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(plugin.digest().to_string(), plugin.clone());
        }
        Ok(())
    }

    /// Quarantines a version whose breaker tripped, lets the last good
    /// version take over, and serves the result.
    async fn quarantine(&self, trip: &Trip) -> Result<(), LifecycleError> {
        let _change = self.changes.lock().await;
        let now = now_ms();
        let alert = NewIntent {
            id: format!("/host/quarantine/{}", trip.digest),
            account_id: String::new(),
            event_id: None,
            source: format!("host:{}", self.host_id),
            plugin_digest: Some(trip.digest.clone()),
            signal: "plugin.quarantined".into(),
            kind: "notify".into(),
            timing: "immediate".into(),
            body: json!({
                "channel": "chat",
                "recipient": "operators",
                "template": "plugin-quarantined",
                "summary": format!("{} {} quarantined: {}", trip.name, trip.version, trip.reason),
            }),
            planned_at: now,
        };
        let who = self.host_actor("circuit-breaker");
        let fallback = self
            .store
            .quarantine_plugin(&trip.digest, &trip.reason, &who, &alert)
            .await?;
        self.metrics.deploy("quarantined");
        match &fallback {
            Some(good) => tracing::warn!(plugin = %trip.name, version = %trip.version,
                fallback = %good.version, "plugin quarantined; the last good version serves"),
            None => tracing::warn!(plugin = %trip.name, version = %trip.version,
                "plugin quarantined; no earlier good version, so it no longer serves"),
        }
        self.sync_locked().await
    }
}

/// The versions a version string or digest names, newest deploy first.
fn matching<'v>(
    versions: &'v [PluginVersion],
    wanted: &'v str,
) -> impl Iterator<Item = &'v PluginVersion> {
    versions
        .iter()
        .filter(move |v| v.digest == wanted || v.version == wanted)
}

/// Follows the registry: a notification is a hint to sync now, the clock
/// polled every `poll_every` is the guarantee (a lost notification only
/// delays convergence by one poll).
async fn follow_registry(lifecycle: Arc<Lifecycle>) {
    let mut stop = lifecycle.stop.subscribe();
    let mut listener = lifecycle.store.listen_registry().await;
    if listener.is_none() && lifecycle.store.backend() == "postgres" {
        tracing::warn!("cannot listen for registry notifications; polling only");
    }
    let mut poll = tokio::time::interval(lifecycle.config.poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hinted = async {
            match listener.as_mut() {
                Some(listener) => listener.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            ok = hinted => {
                if !ok {
                    // The listener failed; poll until it can be made again.
                    tracing::warn!("registry notifications lost; polling");
                    listener = None;
                }
            }
            _ = poll.tick() => {
                if listener.is_none() {
                    listener = lifecycle.store.listen_registry().await;
                }
            }
        }
        match lifecycle.store.registry_clock().await {
            Ok(clock) if clock == lifecycle.synced_clock() => {}
            Ok(_) => {
                if let Err(error) = lifecycle.sync().await {
                    tracing::error!(%error, "registry sync failed; retrying on the next poll");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the registry clock"),
        }
    }
}

/// Quarantines the versions whose breaker tripped, one at a time.
async fn quarantine_worker(lifecycle: Arc<Lifecycle>, mut trips: mpsc::UnboundedReceiver<Trip>) {
    while let Some(trip) = trips.recv().await {
        if let Err(error) = lifecycle.quarantine(&trip).await {
            tracing::error!(plugin = %trip.name, %error, "quarantine failed; the breaker can trip again");
            lifecycle.stats.rearm(&trip.digest);
        }
    }
}
