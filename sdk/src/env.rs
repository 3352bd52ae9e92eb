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
pub fn window(metric: &str, days: u32, offset_days: u32) -> MetricWindow {
    #[cfg(target_arch = "wasm32")]
    return crate::wit::vigil::plugin::history::window(metric, days, offset_days);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::fixture_window(metric, days, offset_days);
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
