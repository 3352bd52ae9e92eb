//! Write vigil plugins in Rust.
//!
//! A vigil plugin is a pure function: it reads a [`Context`] (the account,
//! the event, the evaluation time, the scores computed so far) and returns a
//! score card, signals, a verdict or intents. The host does everything else.
//!
//! ```ignore
//! use vigil_sdk::prelude::*;
//!
//! #[vigil_sdk::scorer(name = "seat-usage", description = "Seat usage as a score.")]
//! fn score(ctx: &Context) -> Result<ScoreCard, PluginError> {
//!     let usage = ratio(ctx.account.active_users, ctx.account.licensed_seats);
//!     Ok(ScoreCardBuilder::new("seat-usage")
//!         .factor("usage", 1.0, usage, usage * 100.0, "active / licensed seats")
//!         .build(health_band))
//! }
//! ```
//!
//! The same function compiles natively, so plugin rules are unit tested with
//! `cargo test` and the helpers of [`testing`]; built with
//! `cargo build --target wasm32-wasip2 --release` it becomes a component the
//! host loads.

pub mod builders;
pub mod env;
pub mod testing;

/// Bindings generated from the vigil WIT contract (`wit/v0.2.0`): the shared
/// types and the host imports. Plugin exports are generated in the plugin
/// crate by the attribute macros.
pub mod wit {
    #![allow(missing_docs, unsafe_code, clippy::all)]
    wit_bindgen::generate!({
        path: "../wit/v0.2.0",
        inline: "
            package vigil:sdk;
            world imports {
                import vigil:plugin/types@0.2.0;
                import vigil:plugin/host@0.2.0;
                import vigil:plugin/history@0.2.0;
                import vigil:plugin/batching@0.2.0;
            }
        ",
        world: "vigil:sdk/imports",
        generate_all,
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

pub use wit::vigil::plugin::history::MetricWindow;
pub use wit::vigil::plugin::host::LogLevel;
pub use wit::vigil::plugin::types::{
    Account, Attribute, Channel, Context, Escalate, EscalationLevel, Event, Factor, Freeze,
    Industry, Intent, IntentKind, Notify, PluginError, PluginInfo, PluginKind, Rag, Schedule,
    ScoreCard, ScoreSummary, Severity, Signal, Task, Tier, Timestamp, Timing, Verdict, Webhook,
};

pub use builders::{
    DAY_MS, HOUR_MS, IntentBuilder, ScoreCardBuilder, SignalBuilder, channel_name, health_band,
    lead_band, level_name, ratio, short_number,
};
pub use env::{config, log, window};

/// Exports a function `fn(&Context) -> Result<ScoreCard, PluginError>` as a
/// scorer plugin. Options: `name`, `version`, `description`, `subscribes`,
/// `config_schema`, `fuel`.
pub use vigil_sdk_macros::scorer;

/// Exports a function `fn(&Context) -> Result<Vec<Signal>, PluginError>` as
/// a trigger plugin. Same options as [`scorer`].
pub use vigil_sdk_macros::trigger;

/// Exports a function `fn(&Context, &Signal) -> Result<Verdict, PluginError>`
/// as a condition plugin. Same options as [`scorer`].
pub use vigil_sdk_macros::condition;

/// Exports a function
/// `fn(&Context, &Signal, &Verdict) -> Result<Vec<Intent>, PluginError>` as
/// an action plugin. Same options as [`scorer`].
pub use vigil_sdk_macros::action;

/// Exports a type implementing [`Playbook`] as a playbook plugin: put it on
/// the `impl Playbook for T` block. Same options as [`scorer`].
pub use vigil_sdk_macros::playbook;

/// An industry playbook: a trigger, a condition and an action in one plugin.
pub trait Playbook {
    /// Turns the event, scores and history into signals.
    fn evaluate(ctx: &Context) -> Result<Vec<Signal>, PluginError>;
    /// Decides whether a signal applies in this account's context.
    fn check(ctx: &Context, signal: &Signal) -> Result<Verdict, PluginError>;
    /// Plans the intents for a signal that applies.
    fn plan(ctx: &Context, signal: &Signal, verdict: &Verdict) -> Result<Vec<Intent>, PluginError>;
}

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Account, Channel, Context, DAY_MS, EscalationLevel, Event, Factor, HOUR_MS, Industry,
        Intent, IntentBuilder, IntentKind, LogLevel, MetricWindow, Playbook, PluginError, Rag,
        ScoreCard, ScoreCardBuilder, Severity, Signal, SignalBuilder, Tier, Timestamp, Timing,
        Verdict, config, health_band, lead_band, log, ratio, short_number, window,
    };
}

/// What the attribute macros expand to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// Tells the host that the batch export now works on item `index`
    /// (contract 0.2: the item's clock, history, randomness and limits).
    /// Natively, where plugin functions are called directly, it does
    /// nothing.
    #[inline]
    pub fn begin_item(index: usize) {
        #[cfg(target_arch = "wasm32")]
        crate::wit::vigil::plugin::batching::begin(u32::try_from(index).unwrap_or(u32::MAX));
        #[cfg(not(target_arch = "wasm32"))]
        let _ = index;
    }

    /// Tells the host that the batch export is done with its items, so
    /// what follows (returning the results, freeing the batch) is not
    /// counted against the last one. Natively it does nothing.
    #[inline]
    pub fn end_items() {
        #[cfg(target_arch = "wasm32")]
        crate::wit::vigil::plugin::batching::end();
    }
}
