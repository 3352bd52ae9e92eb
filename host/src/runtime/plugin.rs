//! A loaded plugin: its checked component, what it says about itself, and
//! the calls into it, each contained under the runtime's limits.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::types::{
    Context, Intent, PluginError, PluginInfo, PluginKind, ScoreCard, Signal, Verdict,
};
use super::bindings::{conditioning, meta, planning, scoring, triggering};
use super::output::PluginOutput;
use super::state::{PluginState, STDERR_CAPTURE_BYTES};

/// Warm instances kept per plugin; more concurrent calls instantiate and
/// drop theirs, so the engine's pool is never exhausted by one plugin.
const MAX_POOLED_INSTANCES: usize = 16;
use super::{
    EPOCH_TICK, Limits, LoadError, Runtime, SUPPORTED_CONTRACTS, check_imports, split_version,
};
use crate::history::MetricHistory;

/// Whether calls reuse a warm instance or get a fresh one each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceMode {
    /// Reuse instances between calls (the pipeline's default). An instance
    /// is discarded after any trap, limit hit or rejected output.
    #[default]
    Warm,
    /// A fresh instance for every call: what a bit-exact replay uses.
    Fresh,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The plugin returned a result that passed the host's checks.
    Ok,
    /// The plugin returned a domain error.
    PluginError {
        /// `invalid-input`, `invalid-config`, `insufficient-data` or `internal`.
        kind: String,
        /// The plugin's message.
        message: String,
    },
    /// The call burned its whole fuel budget.
    OutOfFuel,
    /// The call ran past its wall-clock deadline.
    Timeout,
    /// The instance tried to grow its memory past the cap.
    MemoryLimit,
    /// The result was larger than the output cap.
    OutputTooLarge {
        /// Its size.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// The result failed the host's checks.
    InvalidOutput {
        /// What is wrong with it.
        reason: String,
    },
    /// The instance trapped (a panic, an `unreachable`, a bad access), or
    /// could not be instantiated.
    Trap {
        /// The trap, with what the guest wrote to stderr if anything.
        reason: String,
    },
}

impl Outcome {
    /// Whether the call produced a usable result.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// Whether the plugin misbehaved (trap or limit), as opposed to
    /// returning a domain error.
    pub fn is_fault(&self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::PluginError { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => write!(f, "ok"),
            Outcome::PluginError { kind, message } => write!(f, "plugin error ({kind}): {message}"),
            Outcome::OutOfFuel => write!(f, "out of fuel"),
            Outcome::Timeout => write!(f, "deadline exceeded"),
            Outcome::MemoryLimit => write!(f, "memory limit exceeded"),
            Outcome::OutputTooLarge { bytes, limit } => {
                write!(f, "output of {bytes} bytes exceeds the {limit}-byte cap")
            }
            Outcome::InvalidOutput { reason } => write!(f, "invalid output: {reason}"),
            Outcome::Trap { reason } => write!(f, "trap: {reason}"),
        }
    }
}

/// One call into one plugin, as recorded for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvocationRecord {
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's version.
    pub version: String,
    /// The SHA-256 digest of the component.
    pub digest: String,
    /// The export called: `score`, `evaluate`, `check`, `plan` or `describe`.
    pub call: &'static str,
    /// Fuel burned (deterministic: the cost of the call).
    pub fuel_used: u64,
    /// Wall-clock duration in microseconds.
    pub duration_us: u64,
    /// Log lines dropped over the log cap.
    pub logs_dropped: u32,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A call's result (present only when the outcome is `Ok`) and its record.
#[derive(Debug, Clone)]
pub struct Invocation<R> {
    /// The result, if the call succeeded and passed the checks.
    pub output: Option<R>,
    /// What happened.
    pub record: InvocationRecord,
}

/// What a call needs besides its arguments.
#[derive(Debug)]
pub struct CallInput<'a> {
    /// The evaluation time, which the plugin's clock reads.
    pub now: i64,
    /// The seed of the plugin's randomness for this call.
    pub seed: [u8; 32],
    /// The history of the account being evaluated, lent to the call.
    pub history: &'a mut MetricHistory,
}

/// The exports a component has, found once at load.
#[derive(Clone)]
struct Indices {
    meta: meta::GuestIndices,
    scoring: Option<scoring::GuestIndices>,
    triggering: Option<triggering::GuestIndices>,
    conditioning: Option<conditioning::GuestIndices>,
    planning: Option<planning::GuestIndices>,
}

/// The typed exports of one instance.
struct Guests {
    meta: meta::Guest,
    scoring: Option<scoring::Guest>,
    triggering: Option<triggering::Guest>,
    conditioning: Option<conditioning::Guest>,
    planning: Option<planning::Guest>,
}

struct PluginInstance {
    store: Store<PluginState>,
    guests: Guests,
}

/// A checked, described plugin, ready to call. Calls from several threads
/// share a pool of warm instances.
pub struct Plugin {
    info: PluginInfo,
    contract: String,
    digest: String,
    label: Arc<str>,
    engine: Engine,
    pre: InstancePre<PluginState>,
    indices: Indices,
    config: Arc<BTreeMap<String, String>>,
    limits: Limits,
    fuel: u64,
    mode: InstanceMode,
    pool: Mutex<Vec<PluginInstance>>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("label", &self.label)
            .field("digest", &self.digest)
            .field("fuel", &self.fuel)
            .finish_non_exhaustive()
    }
}

/// What a component imports and exports, and which world that makes it.
struct Analysis {
    imports: Vec<String>,
    exports: Vec<String>,
    world: Result<(PluginKind, String), LoadError>,
}

fn analyze(engine: &Engine, component: &Component) -> Analysis {
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    imports.sort();
    exports.sort();
    let world = check_imports(&imports).and_then(|()| world_of(&exports));
    Analysis {
        imports,
        exports,
        world,
    }
}

/// The world a component targets, from its exports.
fn world_of(exports: &[String]) -> Result<(PluginKind, String), LoadError> {
    let mut found = BTreeMap::new();
    let mut contract = None;
    for name in exports {
        let (base, version) = split_version(name);
        let Some(interface) = base.strip_prefix("vigil:plugin/") else {
            continue;
        };
        let version = version.unwrap_or("").to_string();
        if !SUPPORTED_CONTRACTS.contains(&version.as_str()) {
            return Err(LoadError::UnsupportedContract { found: version });
        }
        contract = Some(version);
        found.insert(interface, ());
    }
    let has = |interface: &str| found.contains_key(interface);
    let no_world = || LoadError::NoVigilWorld {
        exports: exports.to_vec(),
    };
    if !has("meta") {
        return Err(no_world());
    }
    let kind = match (
        has("scoring"),
        has("triggering"),
        has("conditioning"),
        has("planning"),
    ) {
        (true, false, false, false) => PluginKind::Scorer,
        (false, true, false, false) => PluginKind::Trigger,
        (false, false, true, false) => PluginKind::Condition,
        (false, false, false, true) => PluginKind::Action,
        (false, true, true, true) => PluginKind::Playbook,
        _ => return Err(no_world()),
    };
    Ok((kind, contract.unwrap_or_default()))
}

/// The kebab-case name of a plugin kind, as in the WIT.
pub fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Scorer => "scorer",
        PluginKind::Trigger => "trigger",
        PluginKind::Condition => "condition",
        PluginKind::Action => "action",
        PluginKind::Playbook => "playbook",
    }
}

impl Plugin {
    pub(super) fn load(
        engine: &Engine,
        linker: &Linker<PluginState>,
        component: Component,
        digest: String,
        config: Arc<BTreeMap<String, String>>,
        limits: Limits,
        mode: InstanceMode,
    ) -> Result<Self, LoadError> {
        let Analysis { world, .. } = analyze(engine, &component);
        let (kind, contract) = world?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let indices = Indices {
            meta: meta::GuestIndices::new(&pre).map_err(link)?,
            scoring: matches!(kind, PluginKind::Scorer)
                .then(|| scoring::GuestIndices::new(&pre))
                .transpose()
                .map_err(link)?,
            triggering: matches!(kind, PluginKind::Trigger | PluginKind::Playbook)
                .then(|| triggering::GuestIndices::new(&pre))
                .transpose()
                .map_err(link)?,
            conditioning: matches!(kind, PluginKind::Condition | PluginKind::Playbook)
                .then(|| conditioning::GuestIndices::new(&pre))
                .transpose()
                .map_err(link)?,
            planning: matches!(kind, PluginKind::Action | PluginKind::Playbook)
                .then(|| planning::GuestIndices::new(&pre))
                .transpose()
                .map_err(link)?,
        };
        let mut plugin = Self {
            info: PluginInfo {
                name: "(loading)".into(),
                version: "0.0.0".into(),
                kind,
                description: String::new(),
                subscribes: Vec::new(),
                config_schema: "{}".into(),
                default_fuel: limits.max_fuel,
            },
            contract,
            label: Arc::from(format!("(loading)@{}", &digest[..12])),
            digest,
            engine: engine.clone(),
            pre,
            indices,
            config,
            limits,
            fuel: limits.max_fuel,
            mode,
            pool: Mutex::new(Vec::new()),
        };
        let info = plugin.describe_fresh()?;
        if info.kind != kind {
            return Err(LoadError::Describe(format!(
                "says the plugin is a {}, but the component targets the {} world",
                kind_name(info.kind),
                kind_name(kind)
            )));
        }
        plugin.fuel = info.default_fuel.min(limits.max_fuel);
        plugin.label = Arc::from(format!("{}@{}", info.name, info.version));
        plugin.info = info;
        Ok(plugin)
    }

    /// Calls `describe()` on a fresh instance.
    fn describe_fresh(&self) -> Result<PluginInfo, LoadError> {
        let mut history = MetricHistory::default();
        let input = CallInput {
            now: 0,
            seed: [0; 32],
            history: &mut history,
        };
        let invocation = self.invoke("describe", input, |guests, store| {
            guests.meta.call_describe(store).map(Ok)
        });
        match invocation.output {
            Some(info) => Ok(info),
            None => Err(LoadError::Describe(format!(
                "failed: {}",
                invocation.record.outcome
            ))),
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.info.kind
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The SHA-256 digest of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The contract version the component targets.
    pub fn contract(&self) -> &str {
        &self.contract
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The fuel budget of one call.
    pub fn fuel_budget(&self) -> u64 {
        self.fuel
    }

    /// Whether the plugin wants events of `kind`.
    pub fn subscribes_to(&self, kind: &str) -> bool {
        self.info.subscribes.is_empty()
            || self
                .info
                .subscribes
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => kind.starts_with(prefix),
                    None => pattern == kind,
                })
    }

    /// Calls `score` (scorers).
    pub fn score(&self, input: CallInput<'_>, ctx: &Context) -> Invocation<ScoreCard> {
        self.invoke("score", input, |guests, store| match &guests.scoring {
            Some(scoring) => scoring.call_score(store, ctx),
            None => Err(wasmtime::format_err!("the plugin does not export scoring")),
        })
    }

    /// Calls `evaluate` (triggers and playbooks).
    pub fn evaluate(&self, input: CallInput<'_>, ctx: &Context) -> Invocation<Vec<Signal>> {
        self.invoke("evaluate", input, |guests, store| {
            match &guests.triggering {
                Some(triggering) => triggering.call_evaluate(store, ctx),
                None => Err(wasmtime::format_err!(
                    "the plugin does not export triggering"
                )),
            }
        })
    }

    /// Calls `check` (conditions and playbooks).
    pub fn check(
        &self,
        input: CallInput<'_>,
        ctx: &Context,
        signal: &Signal,
    ) -> Invocation<Verdict> {
        self.invoke("check", input, |guests, store| match &guests.conditioning {
            Some(conditioning) => conditioning.call_check(store, ctx, signal),
            None => Err(wasmtime::format_err!(
                "the plugin does not export conditioning"
            )),
        })
    }

    /// Calls `plan` (actions and playbooks).
    pub fn plan(
        &self,
        input: CallInput<'_>,
        ctx: &Context,
        signal: &Signal,
        verdict: &Verdict,
    ) -> Invocation<Vec<Intent>> {
        self.invoke("plan", input, |guests, store| match &guests.planning {
            Some(planning) => planning.call_plan(store, ctx, signal, verdict),
            None => Err(wasmtime::format_err!("the plugin does not export planning")),
        })
    }

    fn instantiate(&self) -> wasmtime::Result<PluginInstance> {
        let state = PluginState::new(
            Arc::clone(&self.label),
            Arc::clone(&self.config),
            self.limits.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        self.arm(&mut store)?;
        let instance = self.pre.instantiate(&mut store)?;
        let guests = Guests {
            meta: self.indices.meta.load(&mut store, &instance)?,
            scoring: self
                .indices
                .scoring
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
            triggering: self
                .indices
                .triggering
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
            conditioning: self
                .indices
                .conditioning
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
            planning: self
                .indices
                .planning
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()?,
        };
        Ok(PluginInstance { store, guests })
    }

    /// Gives a store a call's fuel budget and deadline, as far as the
    /// runtime's interruption mode uses them.
    fn arm(&self, store: &mut Store<PluginState>) -> wasmtime::Result<()> {
        if self.limits.interruption.fuel() {
            store.set_fuel(self.fuel)?;
        }
        if self.limits.interruption.epoch() {
            store.set_epoch_deadline(self.deadline_ticks());
        }
        Ok(())
    }

    /// Instantiates the plugin once — a new store under the runtime's
    /// limits, the instance from the component pre-instantiated at load,
    /// its exports looked up — and returns how long that took, then drops
    /// the instance (its teardown, untimed, returns the memory to the
    /// pool). That is the fixed cost a call on a fresh instance pays before
    /// the call itself; the benchmarks time it. A failure is reported as
    /// the `Trap` outcome a call would record.
    pub fn instantiate_once(&self) -> Result<std::time::Duration, Outcome> {
        let started = Instant::now();
        let instance = self.instantiate().map_err(|error| Outcome::Trap {
            reason: format!("instantiation failed: {error:#}"),
        })?;
        let elapsed = started.elapsed();
        drop(instance);
        Ok(elapsed)
    }

    fn deadline_ticks(&self) -> u64 {
        let ticks = self
            .limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    fn record(
        &self,
        call: &'static str,
        fuel_used: u64,
        started: Instant,
        logs_dropped: u32,
        outcome: Outcome,
    ) -> InvocationRecord {
        InvocationRecord {
            plugin: self.info.name.clone(),
            version: self.info.version.clone(),
            digest: self.digest.clone(),
            call,
            fuel_used,
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            logs_dropped,
            outcome,
        }
    }

    /// Runs one call under the limits and contains whatever goes wrong: a
    /// faulty instance is dropped, never reused.
    fn invoke<R: PluginOutput>(
        &self,
        call: &'static str,
        input: CallInput<'_>,
        f: impl FnOnce(&Guests, &mut Store<PluginState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Invocation<R> {
        let started = Instant::now();
        let pooled = match self.mode {
            InstanceMode::Warm => self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop(),
            InstanceMode::Fresh => None,
        };
        let mut instance = match pooled.map(Ok).unwrap_or_else(|| self.instantiate()) {
            Ok(instance) => instance,
            Err(error) => {
                let outcome = Outcome::Trap {
                    reason: format!("instantiation failed: {error:#}"),
                };
                return Invocation {
                    output: None,
                    record: self.record(call, 0, started, 0, outcome),
                };
            }
        };

        let prepared = self.arm(&mut instance.store);
        {
            let state = instance.store.data_mut();
            state.now = input.now;
            state.clock.set(input.now);
            state.rng.reseed(input.seed);
            state.log_bytes_left = self.limits.log_bytes;
            state.log_lines_dropped = 0;
            state.limiter.exceeded = false;
            std::mem::swap(&mut state.history, input.history);
        }
        let result = prepared.and_then(|()| f(&instance.guests, &mut instance.store));
        let store = &mut instance.store;
        std::mem::swap(&mut store.data_mut().history, input.history);
        let fuel_used = if self.limits.interruption.fuel() {
            self.fuel.saturating_sub(store.get_fuel().unwrap_or(0))
        } else {
            0
        };
        let logs_dropped = store.data().log_lines_dropped;

        let (output, outcome) = match result {
            Ok(Ok(output)) => {
                let bytes = output.size();
                if bytes > self.limits.output_bytes {
                    (
                        None,
                        Outcome::OutputTooLarge {
                            bytes,
                            limit: self.limits.output_bytes,
                        },
                    )
                } else if let Err(reason) = output.validate() {
                    (None, Outcome::InvalidOutput { reason })
                } else {
                    (Some(output), Outcome::Ok)
                }
            }
            Ok(Err(error)) => (None, plugin_error(error)),
            Err(error) => (None, classify_trap(&error, store.data())),
        };
        let reusable = !outcome.is_fault()
            && self.mode == InstanceMode::Warm
            && store.data().stderr_used() <= STDERR_CAPTURE_BYTES / 2;
        if reusable {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < MAX_POOLED_INSTANCES {
                pool.push(instance);
            }
        }
        if outcome.is_fault() {
            tracing::warn!(plugin = %self.label, call, %outcome, "plugin call contained");
        }
        Invocation {
            output,
            record: self.record(call, fuel_used, started, logs_dropped, outcome),
        }
    }
}

fn plugin_error(error: PluginError) -> Outcome {
    let (kind, message) = match error {
        PluginError::InvalidInput(m) => ("invalid-input", m),
        PluginError::InvalidConfig(m) => ("invalid-config", m),
        PluginError::InsufficientData(m) => ("insufficient-data", m),
        PluginError::Internal(m) => ("internal", m),
    };
    Outcome::PluginError {
        kind: kind.to_string(),
        message,
    }
}

fn classify_trap(error: &wasmtime::Error, state: &PluginState) -> Outcome {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(Trap::Interrupt) => Outcome::Timeout,
        _ if state.limiter.exceeded => Outcome::MemoryLimit,
        _ => {
            let stderr = state.stderr_tail();
            let reason = if stderr.is_empty() {
                format!("{error:#}")
            } else {
                format!("{error:#}; guest stderr: {stderr}")
            };
            Outcome::Trap { reason }
        }
    }
}

/// What `vigil plugin check` reports about a component.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    /// The SHA-256 digest of the bytes.
    pub digest: String,
    /// The size of the component in bytes.
    pub size: usize,
    /// The world it targets, if any.
    pub world: Option<String>,
    /// The contract version it targets, if any.
    pub contract: Option<String>,
    /// Everything it imports.
    pub imports: Vec<String>,
    /// Everything it exports.
    pub exports: Vec<String>,
    /// What `describe()` returned, if the component loads.
    pub info: Option<PluginInfo>,
    /// The fuel budget a call would get.
    pub fuel_budget: Option<u64>,
    /// Why the host would refuse it, if it would.
    pub refused: Option<String>,
}

impl ComponentReport {
    /// Whether the host would load the component.
    pub fn loads(&self) -> bool {
        self.refused.is_none()
    }
}

pub(super) fn inspect(runtime: &Runtime, bytes: &[u8]) -> ComponentReport {
    let mut report = ComponentReport {
        digest: super::cache::digest(bytes),
        size: bytes.len(),
        world: None,
        contract: None,
        imports: Vec::new(),
        exports: Vec::new(),
        info: None,
        fuel_budget: None,
        refused: None,
    };
    let component = match runtime.cache().get_or_compile(runtime.engine(), bytes) {
        Ok((_, component)) => component,
        Err(error) => {
            report.refused = Some(error.to_string());
            return report;
        }
    };
    let analysis = analyze(runtime.engine(), &component);
    report.imports = analysis.imports;
    report.exports = analysis.exports;
    if let Ok((kind, contract)) = &analysis.world {
        report.world = Some(kind_name(*kind).to_string());
        report.contract = Some(contract.clone());
    }
    match Plugin::load(
        runtime.engine(),
        runtime.linker(),
        component,
        report.digest.clone(),
        Arc::new(BTreeMap::new()),
        runtime.limits(),
        InstanceMode::Fresh,
    ) {
        Ok(plugin) => {
            report.fuel_budget = Some(plugin.fuel_budget());
            report.info = Some(plugin.info);
        }
        Err(error) => report.refused = Some(error.to_string()),
    }
    report
}
