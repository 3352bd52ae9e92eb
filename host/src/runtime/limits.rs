//! Per-plugin resource limits and the memory limiter that enforces them.

use std::time::Duration;

/// The limits every plugin call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most fuel one call may burn; a plugin's own `default-fuel` can
    /// only lower it.
    pub max_fuel: u64,
    /// Wall-clock backstop for one call, enforced with epoch interruption.
    pub deadline: Duration,
    /// Linear memory one instance may hold, summed over all its memories.
    pub memory_bytes: usize,
    /// Bytes of log lines one call may write; the rest is dropped.
    pub log_bytes: usize,
    /// The largest result one call may return, in bytes of its strings and
    /// fields.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_fuel: 50_000_000,
            deadline: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            log_bytes: 8 << 10,
            output_bytes: 256 << 10,
        }
    }
}

/// Caps the linear memory of a whole instance: every memory the instance
/// creates or grows counts against one budget.
#[derive(Debug)]
pub(crate) struct InstanceLimiter {
    cap: usize,
    used: usize,
    /// Set when a growth was refused, so a following trap is reported as
    /// the memory limit rather than as the guest's own abort.
    pub(crate) exceeded: bool,
}

impl InstanceLimiter {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        match self.used.checked_add(growth) {
            Some(total) if total <= self.cap => {
                self.used = total;
                Ok(true)
            }
            _ => {
                self.exceeded = true;
                Ok(false)
            }
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
