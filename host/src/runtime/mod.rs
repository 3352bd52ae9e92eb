//! The Wasm runtime: one engine for all plugins, a linker that provides the
//! vigil imports and a WASI that grants nothing, load-time checks, and calls
//! run under fuel, an epoch deadline and a memory cap.

pub mod bindings;
mod cache;
mod clock;
mod lift;
pub mod limits;
mod lower;
pub mod output;
mod plugin;
mod results;
mod state;
mod unpack;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, WasmStr};
use wasmtime::{
    AsContextMut, Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

pub use bindings::WindowSpec;
pub use bindings::types::{PluginInfo, PluginKind};
pub use cache::{ComponentCache, digest};
pub use limits::{Interruption, Limits};
pub use plugin::{
    Batch, BatchContexts, CallInput, ComponentReport, InstanceMode, Invocation, InvocationRecord,
    ItemInput, MAX_DECLARED_POLICY_TAGS, MAX_DECLARED_WINDOWS, MAX_WINDOW_METRIC_BYTES, Outcome,
    Plugin, PluginNames, PluginRef, kind_name,
};
pub use results::{
    CheckItem, DeclaredScore, Factor, PlanItem, Ruling, ScoreCard, Signal, Text, Verdict,
};
use state::PluginState;

/// How often the epoch advances; the deadline is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How much of a returned instance's memory the pool resets by copying
/// pages back rather than unmapping them, where it resets so (see
/// [`resets_by_copying`]). The kernel reports every page of a slot that is
/// resident and not the zero page, so a slot keeps, and copies back at
/// each reset, the pages any instance before wrote, up to this much; past
/// it, or past 32 separate runs of such pages, the rest is unmapped as
/// before. So at most 512 memories × 256 KiB and 1,024 tables × 64 KiB
/// (192 MiB) stay resident this way, and a reset copies at most 256 KiB.
/// An instance of the bench's plugins writes less than 64 KiB in a call of
/// one event (64 KiB to 2 MiB kept all ran alike); in the bench's profile
/// of a fresh instance per call (some 56,000 instances) the peak RSS went
/// from 53–55 MB to 56–61 MB.
const MEMORY_KEEP_RESIDENT: usize = 256 << 10;

/// The same for an instance's tables, which are a few pages at most.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Whether the pool resets a returned instance's memory by copying back
/// the pages it wrote, given whether the kernel can say which pages those
/// are (`PAGEMAP_SCAN`, Linux 6.7 and later) and what `/proc/swaps` holds
/// (`None` if it could not be read). Only with no swap area: the scan finds
/// the written pages that are in memory, and wasmtime 48 neither copies
/// back nor unmaps a written page the kernel has swapped out, so the next
/// instance in the slot would read it (wasmtime pull request 14357). A
/// swap area turned on after the runtime starts is not seen: restart
/// `vigil` after `swapon`.
fn resets_by_copying(pagemap_scan: bool, swaps: Option<&str>) -> bool {
    // The first line of /proc/swaps is its header; each swap area adds one.
    pagemap_scan
        && swaps.is_some_and(|swaps| swaps.lines().skip(1).all(|line| line.trim().is_empty()))
}

/// The WASI interfaces a Rust `std` guest imports even when it does no I/O.
/// They are linked with a context that grants nothing and reads the
/// evaluation time; everything else is refused at load.
const ALLOWED_WASI: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// The contract interfaces a plugin may import.
const ALLOWED_VIGIL: &[&str] = &[
    "vigil:plugin/types",
    "vigil:plugin/host",
    "vigil:plugin/history",
    "vigil:plugin/batching",
];

/// The contract versions this host loads.
pub const SUPPORTED_CONTRACTS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0",
];

/// The contract version the SDK builds against and `vigil plugin new`
/// scaffolds.
pub const LATEST_CONTRACT: &str = "0.7.0";

/// Why a component was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component imports something vigil does not provide.
    #[error(
        "component imports what vigil does not provide: {}",
        imports.iter().map(|i| format!("`{}` ({})", i.import, i.reason)).collect::<Vec<_>>().join("; ")
    )]
    ForbiddenImports {
        /// Every refused import, in name order.
        imports: Vec<ForbiddenImport>,
    },
    /// The component exports no vigil world.
    #[error(
        "component targets no vigil world: it exports [{}]; a vigil plugin exports `vigil:plugin/meta@0.7.0` (or `@0.6.0`, `@0.5.0`, `@0.4.0`, `@0.3.0`, `@0.2.0`, `@0.1.0`) and one of `scoring`, `triggering`, `conditioning`, `planning` (or the last three for a playbook, or `ruling` for a 0.7 ruleset)",
        exports.join(", ")
    )]
    NoVigilWorld {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// The component was built against a contract version this host does not load.
    #[error("component targets vigil:plugin@{found}; this host loads {}", SUPPORTED_CONTRACTS.join(", "))]
    UnsupportedContract {
        /// The version it targets.
        found: String,
    },
    /// The component's imports could not be satisfied.
    #[error("component could not be linked: {0}")]
    Link(String),
    /// `describe()` failed or returned something unusable.
    #[error("describe() {0}")]
    Describe(String),
}

/// One import vigil refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenImport {
    /// The full import name, with its version.
    pub import: String,
    /// Why it is refused.
    pub reason: String,
}

/// The plugin host runtime.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    limits: Limits,
    cache: ComponentCache,
    /// Kept for its `Drop`, which stops the epoch thread (none when the
    /// limits use no epoch deadline).
    _ticker: Option<EpochTicker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the Wasm runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// Starts a runtime with `limits` and an in-memory component cache.
    pub fn new(limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_cache(limits, ComponentCache::in_memory())
    }

    /// Starts a runtime with `limits` and the given component cache.
    pub fn with_cache(limits: Limits, cache: ComponentCache) -> Result<Self, RuntimeError> {
        let engine =
            Engine::new(&engine_config(&limits)).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let mut linker = Linker::<PluginState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError(format!("linking WASI: {e:#}")))?;
        clock::shadow_monotonic_clock(&mut linker)
            .map_err(|e| RuntimeError(format!("linking the plugin clock: {e:#}")))?;
        link_contracts(&mut linker)
            .map_err(|e| RuntimeError(format!("linking the vigil imports: {e:#}")))?;
        let ticker = if limits.interruption.epoch() {
            Some(
                EpochTicker::start(engine.clone())
                    .map_err(|e| RuntimeError(format!("starting the epoch thread: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            limits,
            cache,
            _ticker: ticker,
        })
    }

    /// The limits plugin calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or fetches from the cache), checks and describes a
    /// component, returning a plugin ready to call.
    pub fn load(
        &self,
        bytes: &[u8],
        config: BTreeMap<String, String>,
        mode: InstanceMode,
    ) -> Result<Plugin, LoadError> {
        let span = tracing::info_span!(
            "vigil.runtime.load",
            plugin = tracing::field::Empty,
            digest = tracing::field::Empty
        );
        let _entered = span.enter();
        let (digest, component) = self.cache.get_or_compile(&self.engine, bytes)?;
        span.record("digest", digest.as_str());
        let plugin = Plugin::load(
            &self.engine,
            &self.linker,
            component,
            digest,
            Arc::new(config),
            self.limits,
            mode,
        )?;
        span.record("plugin", plugin.label());
        Ok(plugin)
    }

    /// Everything `vigil plugin check` prints: world, contract, imports,
    /// exports, `describe()`, or the reason the component would be refused.
    pub fn inspect(&self, bytes: &[u8]) -> ComponentReport {
        plugin::inspect(self, bytes)
    }

    pub(crate) fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    pub(crate) fn linker(&self) -> &Arc<Linker<PluginState>> {
        &self.linker
    }
}

/// Set (to anything) to have the engine write `/tmp/perf-<pid>.map`, so
/// that `perf report` names the compiled Wasm functions; for profiling
/// only.
pub const PERF_MAP_VARIABLE: &str = "VIGIL_PERF_MAP";

/// Set (to anything) to have the engine allocate instances on demand
/// instead of from its pool, whose address-space reservation (some 2 TiB)
/// valgrind cannot make; for counting instructions under
/// `valgrind --tool=callgrind` only. The memory limit still holds: the
/// store's limiter, not the pool, stops a memory's growth.
pub const ON_DEMAND_INSTANCES_VARIABLE: &str = "VIGIL_ON_DEMAND_INSTANCES";

fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    if std::env::var_os(PERF_MAP_VARIABLE).is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.wasm_component_model(true);
    // Synchronous calls only: component-model concurrency makes them slower.
    config.concurrency_support(false);
    config.consume_fuel(limits.interruption.fuel());
    config.epoch_interruption(limits.interruption.epoch());
    // Replays must be bit-exact: canonical NaNs, deterministic relaxed SIMD,
    // and (threads are not compiled in) no threads.
    config.cranelift_nan_canonicalization(true);
    config.relaxed_simd_deterministic(true);
    config.max_wasm_stack(1 << 20);
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(512)
        .total_core_instances(2048)
        .total_memories(512)
        .total_tables(1024)
        // One memory may use the whole instance budget; the limiter, not the
        // pool, is what stops growth, so the outcome names the memory limit.
        .max_memory_size(limits.memory_bytes.max(1 << 20));
    // By default a returned instance's memory is reset with `madvise`,
    // which unmaps its pages: a TLB shootdown now and a page fault for
    // every page the next instance touches. Where the kernel can say which
    // pages were written, copying just those back is far cheaper: a fresh
    // instance per call took half the time in the bench, and instantiation
    // 2.0–3.6 µs less (BENCHMARKS.md, "What was made faster", 2026-12-06
    // from 05:01). Without `PAGEMAP_SCAN` the pool would copy the first
    // bytes of each memory whatever was written (for a Rust guest, the cold
    // bottom of its stack), so the defaults stay there, as they do where
    // pages may be swapped out (see `resets_by_copying`).
    // A fixed kernel file, not a path any input names.
    let swaps = std::fs::read_to_string("/proc/swaps").ok();
    let copying = resets_by_copying(
        PoolingAllocationConfig::is_pagemap_scan_available(),
        swaps.as_deref(),
    );
    tracing::debug!(
        copying,
        "instance pool: a returned instance's memory is reset by {}",
        if copying {
            "copying back the pages it wrote"
        } else {
            "unmapping it"
        }
    );
    if copying {
        pooling
            .pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    if std::env::var_os(ON_DEMAND_INSTANCES_VARIABLE).is_some() {
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    } else {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    config
}

/// Advances the engine's epoch so that epoch deadlines fire; stopped and
/// joined when the runtime is dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vigil-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut thread) = self.thread.lock()
            && let Some(thread) = thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// Splits `wasi:io/poll@0.2.12` into (`wasi:io/poll`, `0.2.12`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// Provides the imports of every supported contract version: `host` and
/// `history` of each, and `batching.begin` and `end` of 0.2 to 0.6, which
/// need the store itself (to read and reset the fuel between items), so
/// they are linked by hand rather than through a generated trait.
fn link_contracts(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.instance("vigil:plugin/types@0.1.0")?;
    linker.instance("vigil:plugin/types@0.2.0")?;
    linker.instance("vigil:plugin/types@0.3.0")?;
    linker.instance("vigil:plugin/types@0.4.0")?;
    linker.instance("vigil:plugin/types@0.5.0")?;
    linker.instance("vigil:plugin/types@0.6.0")?;
    linker.instance("vigil:plugin/types@0.7.0")?;
    bindings::v0_1::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_2::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_3::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_4::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_5::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_6::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    bindings::v0_7::vigil::plugin::host::add_to_linker::<_, HasSelf<PluginState>>(
        linker,
        |state| state,
    )?;
    // `history.window` is linked by hand to read the metric name in place
    // in the guest's memory and to write the window with one copy: a
    // plugin asks for a dozen windows an event, and the generated binding
    // would copy each name into a new `String` and write field by field.
    // Its record is the same in every version.
    for version in SUPPORTED_CONTRACTS {
        linker
            .instance(&format!("vigil:plugin/history@{version}"))?
            .func_wrap(
                "window",
                |store, (metric, days, offset_days): (WasmStr, u32, u32)| {
                    let metric = metric.to_str(&store)?;
                    let window = store.data().history_window(&metric, days, offset_days);
                    Ok((lower::LoweredWindow(window),))
                },
            )?;
    }
    let mut batching = linker.instance("vigil:plugin/batching@0.2.0")?;
    batching.func_wrap("begin", |store, (index,): (u32,)| {
        plugin::begin_item(store, index)
    })?;
    batching.func_wrap("end", |store, (): ()| plugin::end_items(store))?;
    // 0.3's `begin` also returns the item's declared windows, computed
    // once the item's account and time are set.
    let mut batching = linker.instance("vigil:plugin/batching@0.3.0")?;
    batching.func_wrap("begin", |mut store, (index,): (u32,)| {
        plugin::begin_item(store.as_context_mut(), index)?;
        Ok((lower::LoweredWindows(store.data().declared_windows()),))
    })?;
    batching.func_wrap("end", |store, (): ()| plugin::end_items(store))?;
    // 0.4 and later send every item's windows with the batch; `begin` only
    // moves to the next item.
    for version in ["0.4.0", "0.5.0", "0.6.0", "0.7.0"] {
        let mut batching = linker.instance(&format!("vigil:plugin/batching@{version}"))?;
        batching.func_wrap("begin", |store, (index,): (u32,)| {
            plugin::begin_item(store, index)
        })?;
        batching.func_wrap("end", |store, (): ()| plugin::end_items(store))?;
    }
    Ok(())
}

/// Checks import names against what vigil provides; refuses with every
/// offending one named.
fn check_imports<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), LoadError> {
    let imports: Vec<ForbiddenImport> = names
        .into_iter()
        .filter_map(|name| check_import(name).err())
        .collect();
    if imports.is_empty() {
        Ok(())
    } else {
        Err(LoadError::ForbiddenImports { imports })
    }
}

/// Checks one import name against what vigil provides.
fn check_import(name: &str) -> Result<(), ForbiddenImport> {
    let (base, version) = split_version(name);
    let refuse = |reason: &str| {
        Err(ForbiddenImport {
            import: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if ALLOWED_VIGIL.contains(&base) {
        return match version {
            Some(v) if SUPPORTED_CONTRACTS.contains(&v) => Ok(()),
            _ => refuse(&format!(
                "this host provides the vigil contract at {}",
                SUPPORTED_CONTRACTS.join(", ")
            )),
        };
    }
    if ALLOWED_WASI.contains(&base) {
        return match version {
            Some(v) if v.starts_with("0.2.") => Ok(()),
            _ => refuse("vigil provides WASI 0.2 only"),
        };
    }
    if base.starts_with("wasi:filesystem/") {
        return refuse("plugins may not use the file system");
    }
    if base.starts_with("wasi:sockets/") {
        return refuse("plugins may not use the network");
    }
    if base.starts_with("wasi:http/") {
        return refuse("plugins may not make HTTP requests; return a webhook intent instead");
    }
    refuse(
        "plugins may import only the vigil contract (host, history) and the deterministic WASI subset (io, clocks, random, cli stdio)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_copies_memory_back_only_with_pagemap_scan_and_no_swap_area() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        let zram = format!("{header}/dev/zram0  partition\t8388604\t\t0\t\t100\n");
        assert!(resets_by_copying(true, Some(header)));
        assert!(resets_by_copying(true, Some(&format!("{header}\n"))));
        assert!(
            !resets_by_copying(true, Some(&zram)),
            "a swap area is active"
        );
        assert!(!resets_by_copying(false, Some(header)), "no PAGEMAP_SCAN");
        assert!(!resets_by_copying(true, None), "/proc/swaps unreadable");
    }

    #[test]
    fn every_forbidden_import_is_named_not_just_the_first() {
        let names = [
            "wasi:filesystem/preopens@0.2.6".to_string(),
            "wasi:io/poll@0.2.6".to_string(),
            "wasi:sockets/tcp@0.2.6".to_string(),
        ];
        match check_imports(&names) {
            Err(LoadError::ForbiddenImports { imports }) => {
                let named: Vec<_> = imports.iter().map(|i| i.import.as_str()).collect();
                assert_eq!(
                    named,
                    ["wasi:filesystem/preopens@0.2.6", "wasi:sockets/tcp@0.2.6"]
                );
            }
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_wasi_a_rust_guest_needs_is_allowed() {
        for name in [
            "wasi:io/poll@0.2.12",
            "wasi:cli/environment@0.2.12",
            "wasi:clocks/monotonic-clock@0.2.0",
            "vigil:plugin/history@0.1.0",
            "vigil:plugin/batching@0.2.0",
            "vigil:plugin/batching@0.3.0",
            "vigil:plugin/batching@0.4.0",
            "vigil:plugin/batching@0.5.0",
            "vigil:plugin/batching@0.6.0",
            "vigil:plugin/batching@0.7.0",
        ] {
            assert_eq!(check_import(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn filesystem_sockets_http_and_unknown_imports_are_refused_by_name() {
        for (name, reason) in [
            ("wasi:filesystem/preopens@0.2.12", "file system"),
            ("wasi:sockets/tcp@0.2.12", "network"),
            ("wasi:http/outgoing-handler@0.2.0", "HTTP"),
            ("acme:spy/exfiltrate", "only the vigil contract"),
            ("vigil:plugin/history@9.0.0", "contract at"),
        ] {
            let error = check_imports([&name.to_string()]).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
            assert!(error.contains(reason), "{error}");
        }
    }
}
