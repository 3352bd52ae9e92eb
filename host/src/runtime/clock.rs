//! `wasi:clocks/monotonic-clock` for plugins: it reads the evaluation time,
//! and a pollable on it is ready at once. A plugin's time does not move, so
//! sleeping takes no time, and no plugin can park a host thread in a sleep
//! that the epoch deadline (which only interrupts Wasm code) cannot end.

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{self, Duration, Instant};

use super::state::PluginState;

/// The monotonic clock of a plugin store.
struct FrozenMonotonicClock;

impl HasData for FrozenMonotonicClock {
    type Data<'a> = FrozenClockView<'a>;
}

struct FrozenClockView<'a>(WasiClocksCtxView<'a>);

impl monotonic_clock::Host for FrozenClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<Instant> {
        self.0.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<Instant> {
        self.0.resolution()
    }

    fn subscribe_instant(&mut self, _when: Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.0.subscribe_duration(0)
    }

    fn subscribe_duration(
        &mut self,
        _duration: Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.0.subscribe_duration(0)
    }
}

/// Replaces the monotonic clock WASI linked with the frozen one.
pub(crate) fn shadow_monotonic_clock(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<PluginState, FrozenMonotonicClock>(linker, |state| {
        FrozenClockView(state.clocks())
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
