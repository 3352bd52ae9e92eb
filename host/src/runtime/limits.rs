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
    /// What stops a runaway call: fuel and the epoch deadline by default.
    /// The other modes exist so that benchmarks can measure what each
    /// costs; with fuel off, calls record no fuel used.
    pub interruption: Interruption,
}

/// Which of wasmtime's two interruption mechanisms the runtime compiles
/// plugins with. Every mode but the default gives up a guarantee, so only
/// benchmarks use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interruption {
    /// Fuel (deterministic cost, `max_fuel`) and the epoch deadline
    /// (wall-clock backstop, `deadline`): the default.
    #[default]
    FuelAndEpoch,
    /// Fuel only: no wall-clock backstop; a call is stopped only when its
    /// fuel runs out.
    Fuel,
    /// The epoch deadline only: calls record no fuel and have no
    /// deterministic budget.
    Epoch,
    /// Neither: a plugin that never returns is never stopped.
    None,
}

impl Interruption {
    /// Whether calls burn fuel.
    pub fn fuel(self) -> bool {
        matches!(self, Interruption::FuelAndEpoch | Interruption::Fuel)
    }

    /// Whether calls have an epoch deadline.
    pub fn epoch(self) -> bool {
        matches!(self, Interruption::FuelAndEpoch | Interruption::Epoch)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_fuel: 50_000_000,
            deadline: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            log_bytes: 8 << 10,
            output_bytes: 256 << 10,
            interruption: Interruption::FuelAndEpoch,
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
