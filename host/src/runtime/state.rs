//! What a plugin's store holds: a WASI context that grants nothing, with a
//! clock that reads the evaluation time and randomness seeded from the
//! invocation; the memory limiter; and the data behind the host imports.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, LogLevel, MetricWindow, WindowSpec};
use super::limits::InstanceLimiter;
use crate::history::{MetricHistory, samples_up_to, window_between, window_bounds};

/// Bytes of a guest's stderr kept to explain a trap (a Rust panic message).
/// Writes past it fail, so an instance that has used half of it is retired
/// (see `stderr_used`) before a chatty plugin could hit the end.
pub(crate) const STDERR_CAPTURE_BYTES: usize = 64 << 10;

/// A guest's stderr: the capture pipe, and a count of the bytes written
/// to it. The host asks how full the capture is before every item of a
/// batch; the pipe answers under its lock, which took about 1 % of the
/// bench pipeline's time (perf, BENCHMARKS.md), where the count is one
/// atomic load. Every write goes through here, so the two always agree.
#[derive(Clone)]
struct CountedStderr {
    pipe: MemoryOutputPipe,
    written: Arc<AtomicUsize>,
}

impl CountedStderr {
    fn new(capacity: usize) -> Self {
        Self {
            pipe: MemoryOutputPipe::new(capacity),
            written: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Bytes written so far.
    fn written(&self) -> usize {
        self.written.load(Ordering::Relaxed)
    }

    fn count(&self, bytes: usize) {
        self.written.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl IsTerminal for CountedStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CountedStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CountedStderr {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let len = bytes.len();
        self.pipe.write(bytes)?;
        self.count(len);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.pipe.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.pipe.check_write()
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedStderr {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CountedStderr {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.pipe).poll_write(cx, buf);
        if let Poll::Ready(Ok(len)) = written {
            self.count(len);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}

/// The most a guest may ask of `get-random-bytes` in one call.
const MAX_RANDOM_BYTES: u64 = 4096;

/// The evaluation time, shared between the host and the WASI clocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct EvaluationClock(Arc<AtomicI64>);

impl EvaluationClock {
    pub(crate) fn set(&self, millis: i64) {
        self.0.store(millis, Ordering::Relaxed);
    }

    fn millis(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl HostWallClock for EvaluationClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.millis()).unwrap_or(0))
    }
}

impl HostMonotonicClock for EvaluationClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.millis())
            .unwrap_or(0)
            .saturating_mul(1_000_000)
    }
}

/// A random stream the host reseeds for every invocation of a plugin that
/// can draw from it (`PluginState::reseed`), so that a plugin which asks
/// for randomness still gives the same output for the same input.
#[derive(Debug, Clone)]
pub(crate) struct InvocationRng(Arc<Mutex<SeededRng>>);

/// The seed of the invocation in progress, and the stream from it once the
/// plugin has asked for randomness. A plugin that can draw may still not,
/// and a batch reseeds before every item, so the stream is set up on first
/// use.
#[derive(Debug)]
struct SeededRng {
    seed: [u8; 32],
    rng: Option<ChaCha8Rng>,
}

impl SeededRng {
    fn stream(&mut self) -> &mut ChaCha8Rng {
        let seed = self.seed;
        self.rng.get_or_insert_with(|| ChaCha8Rng::from_seed(seed))
    }
}

impl InvocationRng {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(SeededRng {
            seed: [0; 32],
            rng: Some(ChaCha8Rng::seed_from_u64(0)),
        })))
    }

    pub(crate) fn reseed(&self, seed: [u8; 32]) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.seed = seed;
        slot.rng = None;
    }

    fn with<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        f(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stream())
    }
}

impl rand::TryRng for InvocationRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.with(|rng| rng.try_next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.with(|rng| rng.try_next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.with(|rng| rng.try_fill_bytes(dst))
    }
}

/// One item of a batch call, as the host set it up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchItem {
    /// The item's evaluation time.
    pub(crate) now: i64,
    /// The seed of the item's randomness.
    pub(crate) seed: [u8; 32],
    /// The position of the item's context, and of its account's history.
    pub(crate) context: usize,
}

/// The history windows a plugin declares (contract 0.3 and later), as
/// `describe` gave them, and which of them start a run of one metric's
/// windows. Plugins declare a metric's windows together (a period and the
/// one before it: health-score, usage-triggers, health-triggers and
/// lead-score all do), so the host looks such a metric's series up once an
/// item, not once a window; where the runs start is worked out once, when
/// the plugin is loaded.
#[derive(Debug, Default)]
pub(crate) struct DeclaredWindows {
    specs: Vec<WindowSpec>,
    /// One per spec: whether its metric differs from the spec before it.
    starts_metric: Vec<bool>,
}

impl DeclaredWindows {
    /// The windows `specs` declares, in the declared order.
    pub(crate) fn new(specs: Vec<WindowSpec>) -> Self {
        let starts_metric = std::iter::once(true)
            .chain(
                specs
                    .windows(2)
                    .map(|pair| matches!(pair, [before, spec] if before.metric != spec.metric)),
            )
            .take(specs.len())
            .collect();
        Self {
            specs,
            starts_metric,
        }
    }

    /// The declarations.
    pub(crate) fn specs(&self) -> &[WindowSpec] {
        &self.specs
    }

    /// Appends to `windows` what `history.window` answers for each
    /// declaration as of `now`, in the declared order.
    fn compute(&self, history: &MetricHistory, now: i64, windows: &mut Vec<MetricWindow>) {
        // Set by the first declaration, which always starts a metric.
        let mut samples: &[(i64, f64)] = &[];
        // The start of the window before, of the same metric, and the index
        // of its first sample. A metric's periods are mostly declared one
        // after the other (the last 30 days, then the 30 before), so the
        // window before starts where this one ends: its end is found
        // without a search.
        let mut start_before: Option<(i64, usize)> = None;
        for (spec, starts_metric) in self.specs.iter().zip(&self.starts_metric) {
            if *starts_metric {
                samples = history.samples(&spec.metric);
                start_before = None;
            }
            let (start, end) = window_bounds(now, spec.days, spec.offset_days);
            let end_at = match start_before {
                Some((at, index)) if at == end => index,
                _ => samples_up_to(samples, end),
            };
            let (window, start_at) = window_between(samples, start, end_at);
            windows.push(window);
            start_before = Some((start, start_at));
        }
    }
}

/// What one item of a batch call spent, recorded when the item ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemSpent {
    /// Fuel burned from the item's budget.
    pub(crate) fuel: u64,
    /// Log lines dropped over the item's allowance.
    pub(crate) logs_dropped: u32,
    /// How long the item ran.
    pub(crate) duration: Duration,
}

/// A batch call in progress: the items, which one the plugin is on, and
/// what the finished ones spent. `batching.begin` moves from one item to
/// the next; see `Plugin::invoke_batch`.
#[derive(Debug, Default)]
pub(crate) struct BatchState {
    pub(crate) items: Vec<BatchItem>,
    /// The index the next `begin` must name.
    pub(crate) next: usize,
    /// When the current item began.
    pub(crate) began: Option<Instant>,
    /// One entry per ended item, in order.
    pub(crate) spent: Vec<ItemSpent>,
    /// Each item's fuel budget (`None` when fuel is off).
    pub(crate) fuel: Option<u64>,
    /// Each item's deadline in epoch ticks (`None` when the epoch is off).
    pub(crate) deadline_ticks: Option<u64>,
    /// Each item's log allowance in bytes.
    pub(crate) log_bytes: usize,
    /// The fuel of the batch's own work before the first item and after
    /// `end` (`None` when fuel is off).
    pub(crate) glue_fuel: Option<u64>,
    /// Whether the plugin called `end`.
    pub(crate) ended: bool,
    /// Whether `begin` retired the instance (its stderr capture half full).
    pub(crate) retired: bool,
}

impl BatchState {
    /// The item in progress, if any.
    pub(crate) fn current(&self) -> Option<usize> {
        self.began.map(|_| self.next.saturating_sub(1))
    }
}

/// The store data of one plugin instance.
pub(crate) struct PluginState {
    /// The WASI context, built at the guest's first WASI call: a component
    /// built without WASI (the standard plugins) never makes one, so its
    /// instances skip building it.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) clock: EvaluationClock,
    rng: InvocationRng,
    /// Whether the component imports an interface that draws from `rng`
    /// (`Plugin::draws_randomness`): only then is it reseeded.
    draws_randomness: bool,
    stderr: CountedStderr,
    /// `name@version`, on every log line.
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    /// The history windows the plugin declares (contract 0.3 and later):
    /// 0.3's `batching.begin` returns them for each item, 0.4's batch
    /// exports take every item's.
    windows: Arc<DeclaredWindows>,
    /// The histories of the accounts being evaluated, lent for one call:
    /// one for a call of contract 0.1, one per context for a batch.
    pub(crate) histories: Vec<MetricHistory>,
    /// Which of `histories` the `history` import reads.
    pub(crate) subject: usize,
    /// The items of the batch call in progress (contract 0.2).
    pub(crate) batch: BatchState,
    pub(crate) now: i64,
    pub(crate) log_bytes_left: usize,
    pub(crate) log_lines_dropped: u32,
    /// The tail of the last error-level line the call or item in progress
    /// logged, dropped or not: a plugin built without WASI has no stderr,
    /// and the SDK's panic hook logs a panic's message at that level, so a
    /// trap's reason can still say what the guest said.
    pub(crate) last_error_log: Option<String>,
}

impl PluginState {
    pub(crate) fn new(
        plugin: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        windows: Arc<DeclaredWindows>,
        memory_bytes: usize,
        draws_randomness: bool,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limiter: InstanceLimiter::new(memory_bytes),
            clock: EvaluationClock::default(),
            rng: InvocationRng::new(),
            draws_randomness,
            stderr: CountedStderr::new(STDERR_CAPTURE_BYTES),
            plugin,
            config,
            windows,
            histories: Vec::new(),
            subject: 0,
            batch: BatchState::default(),
            now: 0,
            log_bytes_left: 0,
            log_lines_dropped: 0,
            last_error_log: None,
        }
    }

    /// Seeds the random stream for the next item or call, for a plugin
    /// that can draw from it: no other can tell one seed from another, and
    /// a reseed takes the stream's lock (once an item of every batch).
    pub(crate) fn reseed(&self, seed: [u8; 32]) {
        if self.draws_randomness {
            self.rng.reseed(seed);
        }
    }

    /// Bytes the guest has written to stderr over this instance's life.
    pub(crate) fn stderr_used(&self) -> usize {
        // Asked before every item of a batch: a count, not the pipe's lock.
        self.stderr.written()
    }

    /// The tail of what the guest wrote to stderr (a panic message).
    pub(crate) fn stderr_tail(&self) -> String {
        let bytes = self.stderr.pipe.contents();
        tail(&String::from_utf8_lossy(&bytes)).to_string()
    }

    /// Forgets the last error line, for a new call or item.
    pub(crate) fn forget_error_log(&mut self) {
        self.last_error_log = None;
    }
}

/// The last 512 bytes of `text`, trimmed, from a character boundary: what
/// a trap's reason quotes of the guest's stderr or error log.
fn tail(text: &str) -> &str {
    let text = text.trim();
    let start = text.len().saturating_sub(512);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

/// The WASI world of a plugin: no preopens, no environment, no arguments,
/// no network, no stdin (the builder grants nothing unless asked); the
/// clocks read the evaluation time, randomness comes from the invocation's
/// seed, stderr goes to the instance's capture.
fn deterministic_wasi(
    clock: &EvaluationClock,
    rng: &InvocationRng,
    stderr: &CountedStderr,
) -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(clock.clone())
        .monotonic_clock(clock.clone())
        .secure_random(rng.clone())
        .insecure_random(rng.clone())
        .insecure_random_seed(0)
        .max_random_size(MAX_RANDOM_BYTES)
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let Self {
            wasi,
            table,
            clock,
            rng,
            stderr,
            ..
        } = self;
        WasiCtxView {
            ctx: wasi.get_or_insert_with(|| deterministic_wasi(clock, rng, stderr)),
            table,
        }
    }
}

impl PluginState {
    fn log_line(&mut self, level: LogLevel, message: &str) {
        if matches!(level, LogLevel::Error) {
            self.last_error_log = Some(tail(message).to_string());
        }
        if message.len() > self.log_bytes_left {
            self.log_lines_dropped = self.log_lines_dropped.saturating_add(1);
            return;
        }
        self.log_bytes_left -= message.len();
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: "vigil::plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "vigil::plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "vigil::plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "vigil::plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "vigil::plugin", plugin, "{message}"),
        }
    }

    /// The windows the plugin declares, for the item being evaluated: what
    /// `history.window` answers for each, in the declared order.
    pub(crate) fn declared_windows(&self) -> Vec<MetricWindow> {
        let mut windows = Vec::with_capacity(self.windows.specs.len());
        let empty = MetricHistory::default();
        let history = self.histories.get(self.subject).unwrap_or(&empty);
        self.windows.compute(history, self.now, &mut windows);
        windows
    }

    /// The windows the plugin declares, for every item of the batch in
    /// progress, item after item (contract 0.4 sends them with the batch):
    /// each what `history.window` answers for it during that item.
    pub(crate) fn batch_windows(&self) -> Vec<MetricWindow> {
        if self.windows.specs.is_empty() {
            return Vec::new();
        }
        let mut windows = Vec::with_capacity(self.batch.items.len() * self.windows.specs.len());
        let empty = MetricHistory::default();
        for item in &self.batch.items {
            let history = self.histories.get(item.context).unwrap_or(&empty);
            self.windows.compute(history, item.now, &mut windows);
        }
        windows
    }

    /// `history.window` for the item being evaluated.
    pub(crate) fn history_window(&self, metric: &str, days: u32, offset_days: u32) -> MetricWindow {
        match self.histories.get(self.subject) {
            Some(history) => history.window(metric, self.now, days, offset_days),
            None => MetricHistory::default().window(metric, self.now, days, offset_days),
        }
    }
}

impl bindings::v0_1::vigil::plugin::host::Host for PluginState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log_line(level, &message);
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

/// The `host` import of a contract version whose bindings have a `log-level`
/// of their own: the same log and configuration as 0.1's.
macro_rules! host_import {
    ($version:ident) => {
        impl bindings::$version::vigil::plugin::host::Host for PluginState {
            fn log(
                &mut self,
                level: bindings::$version::vigil::plugin::host::LogLevel,
                message: String,
            ) {
                use bindings::$version::vigil::plugin::host::LogLevel as Level;
                let level = match level {
                    Level::Trace => LogLevel::Trace,
                    Level::Debug => LogLevel::Debug,
                    Level::Info => LogLevel::Info,
                    Level::Warn => LogLevel::Warn,
                    Level::Error => LogLevel::Error,
                };
                self.log_line(level, &message);
            }

            fn config(&mut self, key: String) -> Option<String> {
                self.config.get(&key).cloned()
            }
        }
    };
}

host_import!(v0_2);
host_import!(v0_3);
host_import!(v0_4);
host_import!(v0_5);
host_import!(v0_6);
host_import!(v0_7);

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn a_plugin_state_builds_its_wasi_world_at_the_first_wasi_call_and_keeps_it() {
        let mut state = PluginState::new(
            Arc::from("test@0.1.0"),
            Arc::new(BTreeMap::new()),
            Arc::new(DeclaredWindows::new(Vec::new())),
            1 << 20,
            false,
        );
        // A component built without WASI never asks: nothing is built.
        assert!(state.wasi.is_none());
        let first: *const WasiCtx = state.ctx().ctx;
        assert!(state.wasi.is_some());
        let second: *const WasiCtx = state.ctx().ctx;
        assert_eq!(first, second, "built once, then kept");
    }

    #[test]
    fn the_stderr_count_is_what_the_capture_holds_through_either_stream() {
        let stderr = CountedStderr::new(16);
        let mut p2 = stderr.p2_stream();
        assert!(p2.write(bytes::Bytes::from_static(b"panicked")).is_ok());
        let mut written = 0;
        let mut stream = Box::into_pin(stderr.async_stream());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Ok(len)) = stream.as_mut().poll_write(&mut cx, b"at 12345") {
            written = len;
        }
        assert_eq!(written, 8);
        // A write past the capture fails and counts nothing.
        assert!(p2.write(bytes::Bytes::from_static(b"!")).is_err());
        assert_eq!(stderr.written(), 16);
        assert_eq!(stderr.written(), stderr.pipe.contents().len());
        assert_eq!(&stderr.pipe.contents()[..], b"panickedat 12345");
    }

    #[test]
    fn batch_windows_are_each_items_history_windows_however_the_metrics_are_declared() {
        const NOW: i64 = 1_780_272_000_000;
        const DAY: i64 = 86_400_000;
        let spec = |metric: &str, days, offset_days| WindowSpec {
            metric: metric.into(),
            days,
            offset_days,
        };
        // One metric's periods declared one before the other, then again
        // after another (a day long, empty, and one ending at that day's
        // end); one never recorded; the other one twice apart.
        let windows = Arc::new(DeclaredWindows::new(vec![
            spec("logins", 30, 0),
            spec("logins", 30, 30),
            spec("logins", 10, 60),
            spec("logins", 0, 3),
            spec("logins", 1, 2),
            spec("nps", 90, 0),
            spec("logins", 7, 0),
            spec("absent", 30, 0),
            spec("nps", 30, 0),
        ]));
        let histories: Vec<MetricHistory> = (0..3)
            .map(|n| {
                let mut history = MetricHistory::default();
                for day in 0..70 {
                    history.record("logins", NOW - day * DAY, (day * (n + 1)) as f64);
                    if day % 10 == n {
                        history.record("nps", NOW - day * DAY, (n + day) as f64);
                    }
                }
                history
            })
            .collect();
        let mut state = PluginState::new(
            "test".into(),
            Arc::default(),
            windows.clone(),
            1 << 20,
            false,
        );
        state.histories = histories.clone();
        let item = |now, context| BatchItem {
            now,
            seed: [0; 32],
            context,
        };
        state.batch.items = vec![item(NOW, 2), item(NOW - 5 * DAY, 0), item(NOW, 1)];
        let expected: Vec<MetricWindow> = state
            .batch
            .items
            .iter()
            .flat_map(|item| {
                windows.specs().iter().map(|spec| {
                    // Worked out sample by sample, with no search.
                    let end = item.now - i64::from(spec.offset_days) * DAY;
                    let start = end - i64::from(spec.days) * DAY;
                    let values: Vec<f64> = histories[item.context]
                        .samples(&spec.metric)
                        .iter()
                        .filter(|(at, _)| start < *at && *at <= end)
                        .map(|(_, value)| *value)
                        .collect();
                    MetricWindow {
                        count: values.len() as u32,
                        sum: values.iter().fold(0.0, |sum, value| sum + value),
                        min: values.iter().copied().reduce(f64::min).unwrap_or(0.0),
                        max: values.iter().copied().reduce(f64::max).unwrap_or(0.0),
                        first: values.first().copied().unwrap_or(0.0),
                        last: values.last().copied().unwrap_or(0.0),
                    }
                })
            })
            .collect();
        // Not all empty: the windows hold samples.
        assert!(expected.iter().filter(|window| window.count > 0).count() > 12);
        assert_eq!(expected.len(), 27);
        assert_eq!(state.batch_windows(), expected);
        // One item's, as contract 0.3's `begin` returns them: the second's.
        state.subject = 0;
        state.now = NOW - 5 * DAY;
        assert_eq!(state.declared_windows(), expected[9..18]);
    }

    fn draws(rng: &mut impl Rng) -> [u64; 3] {
        [rng.next_u64(), rng.next_u64(), rng.next_u64()]
    }

    #[test]
    fn a_reseeded_stream_is_the_seeds_stream_however_much_of_the_last_was_used() {
        let (first, second) = ([1u8; 32], [2u8; 32]);
        let mut rng = InvocationRng::new();
        rng.reseed(first);
        assert_eq!(draws(&mut rng), draws(&mut ChaCha8Rng::from_seed(first)));
        // Reseeded after some use, after none, and twice in a row.
        rng.reseed(second);
        rng.reseed(first);
        rng.reseed(second);
        assert_eq!(draws(&mut rng), draws(&mut ChaCha8Rng::from_seed(second)));
        let mut bytes = [0u8; 16];
        rng.reseed(first);
        rng.fill_bytes(&mut bytes);
        let mut expected = [0u8; 16];
        ChaCha8Rng::from_seed(first).fill_bytes(&mut expected);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_stream_never_reseeded_is_the_one_of_seed_zero() {
        let mut rng = InvocationRng::new();
        assert_eq!(draws(&mut rng), draws(&mut ChaCha8Rng::seed_from_u64(0)));
    }
}
