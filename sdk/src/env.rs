//! What a plugin may ask of its host: log lines, configuration values and the
//! account's metric history.
//!
//! Inside Wasm these call the host imports. Compiled natively (plugin unit
//! tests) they read the fixtures installed with [`crate::testing`].

use crate::{LogLevel, MetricWindow};

/// Writes a line to the host's log, tagged with the plugin's id.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::wit::vigil::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message);
}

/// Reads the plugin's configuration value for `key`.
pub fn config(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::wit::vigil::plugin::host::config(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::fixture_config(key);
}

/// Aggregates `metric` over the `days` days that end `offset_days` days
/// before the evaluation time: `window("logins", 30, 0)` is the last 30 days,
/// `window("logins", 30, 30)` the 30 days before those.
///
/// A window the plugin declares (the macros' `windows` option) came with the
/// item and is answered here; any other is one call to the host.
pub fn window(metric: &str, days: u32, offset_days: u32) -> MetricWindow {
    #[cfg(target_arch = "wasm32")]
    return item_windows::get(metric, days, offset_days)
        .unwrap_or_else(|| crate::wit::vigil::plugin::history::window(metric, days, offset_days));
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::fixture_window(metric, days, offset_days);
}

/// The declared windows of a batch's items, as the batch export received
/// them, and which item is in progress.
#[cfg(target_arch = "wasm32")]
pub(crate) mod item_windows {
    use std::cell::RefCell;

    use crate::__private::Declared;
    use crate::MetricWindow;

    /// What the windows are of, every item's windows (item after item, in
    /// the order of the declarations), where the item in progress's begin,
    /// and the declaration after the one last asked for.
    struct Batch {
        declared: &'static [Declared],
        windows: Vec<MetricWindow>,
        first: usize,
        next: usize,
    }

    thread_local! {
        static BATCH: RefCell<Batch> = const {
            RefCell::new(Batch { declared: &[], windows: Vec::new(), first: 0, next: 0 })
        };
    }

    /// Keeps a batch's windows until the end of the batch.
    pub(crate) fn set(declared: &'static [Declared], windows: Vec<MetricWindow>) {
        BATCH.with(|batch| {
            *batch.borrow_mut() = Batch {
                declared,
                windows,
                first: 0,
                next: 0,
            };
        });
    }

    /// Makes item `index` the one whose windows [`get`] answers.
    pub(crate) fn select(index: usize) {
        BATCH.with(|batch| {
            let mut batch = batch.borrow_mut();
            batch.first = index.saturating_mul(batch.declared.len());
            batch.next = 0;
        });
    }

    /// Whether `a` and `b` are the same text. A plugin names a window with
    /// the literal it declared it with, which the compiler merges with the
    /// declaration's, so the address and length match and no byte is
    /// compared (Wasm's `memcmp` is a byte loop, and cost the scorer's six
    /// lookups more than the rest of their work: 2,161 instructions an
    /// event against 1,934).
    fn same_text(a: &str, b: &str) -> bool {
        std::ptr::eq(a, b) || a == b
    }

    /// Forgets the batch's windows.
    pub(crate) fn clear() {
        set(&[], Vec::new());
    }

    /// The item's value of a declared window, if `metric`, `days` and
    /// `offset_days` name one (and the host sent one for it).
    pub(crate) fn get(metric: &str, days: u32, offset_days: u32) -> Option<MetricWindow> {
        BATCH.with(|batch| {
            let batch = &mut *batch.borrow_mut();
            let is_asked =
                |(m, d, o): &Declared| *d == days && *o == offset_days && same_text(m, metric);
            // Plugins mostly ask in the order they declare: the declaration
            // after the last one asked for is tried first. (A window declared
            // twice has the same value at both places: the host computes
            // every declared entry, duplicates included.)
            let at = match batch.declared.get(batch.next) {
                Some(declared) if is_asked(declared) => batch.next,
                _ => batch.declared.iter().position(is_asked)?,
            };
            batch.next = at + 1;
            batch.windows.get(batch.first.checked_add(at)?).cloned()
        })
    }
}

impl MetricWindow {
    /// The mean of the samples, or `None` for an empty window.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / f64::from(self.count))
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}
