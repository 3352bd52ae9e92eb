//! Host bindings of the plugin contract, one module per supported version:
//! `v0_1` for `vigil:plugin@0.1.0` (one call per event), `v0_2` for
//! `vigil:plugin@0.2.0` (one call per batch), `v0_3` for
//! `vigil:plugin@0.3.0` (a batch, with declared history windows), `v0_4`
//! for `vigil:plugin@0.4.0` (windows sent with the batch, results packed),
//! `v0_5` for `vigil:plugin@0.5.0` (policy tags declared, named by bit),
//! `v0_6` for `vigil:plugin@0.6.0` (scores declared: a card's name, band
//! and factors by position), `v0_7` for `vigil:plugin@0.7.0` (0.6 and the
//! `ruleset` kind).
//!
//! In each, one host-side world includes every plugin world, so a single set
//! of import traits and export handles serves all kinds; which exports a
//! component actually has is looked up per interface at load time. The data
//! types did not change between 0.1 and 0.2, so version 0.2's bindings use
//! version 0.1's Rust types (`with`), and the host has one set of contract
//! types, re-exported here: contexts, accounts, events and intents are
//! used as they are. Version 0.3 adds a field to `plugin-info`, which only
//! `describe` returns; its other types are 0.1's in structure, so its
//! batch exports (called with 0.1's types, which wasmtime checks by
//! structure) take 0.1's types, and its `plugin-info` is converted.
//! Version 0.4's exports return packed results, lifted as its own types
//! and unpacked into the host's; its `plugin-info` is 0.3's in structure.
//! Version 0.5's records are 0.4's in structure but for `plugin-info`
//! (which adds the declared policy tags) and the packed verdicts (tags by
//! bit): its scoring, triggering and planning exports are called with
//! 0.4's types, its `check` returns its own, lifted and unpacked with the
//! declared tags. Version 0.6's records are 0.5's in structure but for
//! `plugin-info` (which adds the declared scores) and the packed score
//! cards (score, band and factors by position): its `score` returns its
//! own, lifted and unpacked with the declared scores; its other exports
//! are called as 0.5's. Version 0.7's records are 0.6's in structure but
//! for `plugin-info`, whose `plugin-kind` adds `ruleset`; its exports are
//! called as 0.6's, and a ruleset's `rule` returns its own
//! `packed-rulings`, lifted by wasmtime and unpacked with the declared
//! scores and tags.
//!
//! The host's `types` are 0.1's but for the plugin's kind and info, which
//! are the host's own (`super::results`): 0.7's kinds are one more than
//! 0.1's, and every version's `plugin-info` is converted into them.
//!
//! What plugins return (score cards, signals, verdicts) the host keeps in
//! types of its own (`super::results`): results of 0.1 to 0.3 are
//! converted from these with `From`, and check and plan items are
//! converted back into these for the calls that take them unpacked.

#![allow(missing_docs, clippy::all)]

/// Contract 0.1.0: `score(ctx)`, `evaluate(ctx)`, `check(ctx, signal)`,
/// `plan(ctx, signal, verdict)`, one event per call.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.1.0;
                include vigil:plugin/playbook@0.1.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::{conditioning, meta, planning, scoring, triggering};
}

/// Contract 0.2.0: the same exports over a batch of contexts, and the
/// `batching.begin` import between items.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.2.0;
                include vigil:plugin/playbook@0.2.0;
            }
        ",
        world: "vigil:host/plugin",
        with: {
            "vigil:plugin/types@0.2.0": super::v0_1::vigil::plugin::types,
        },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::{conditioning, meta, planning, scoring, triggering};
}

/// Contract 0.3.0: 0.2 with history windows declared in `plugin-info` and
/// returned by `batching.begin`.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.3.0;
                include vigil:plugin/playbook@0.3.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::meta;
}

/// Contract 0.4.0: 0.3 with every item's declared windows sent with the
/// batch (`begin` returns nothing), and results and a condition's signals
/// packed.
pub mod v0_4 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.4.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.4.0;
                include vigil:plugin/playbook@0.4.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::meta;
}

/// Contract 0.5.0: 0.4 with the policy tags a condition's verdicts may
/// carry declared in `plugin-info`, and named by bit in packed verdicts.
pub mod v0_5 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.5.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.5.0;
                include vigil:plugin/playbook@0.5.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::meta;
}

/// Contract 0.6.0: 0.5 with the scores a scorer computes declared in
/// `plugin-info`, and a packed card's score, band and factors named by
/// position.
pub mod v0_6 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.6.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.6.0;
                include vigil:plugin/playbook@0.6.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::meta;
}

/// Contract 0.7.0: 0.6 with the `ruleset` kind, whose `rule` scores,
/// raises and checks in one call.
pub mod v0_7 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.7.0",
        inline: "
            package vigil:host;
            world plugin {
                include vigil:plugin/scorer@0.7.0;
                include vigil:plugin/playbook@0.7.0;
                include vigil:plugin/ruleset@0.7.0;
            }
        ",
        world: "vigil:host/plugin",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });

    pub use exports::vigil::plugin::meta;
}

/// The contract's types as the host uses them: contract 0.1's records
/// (every later version keeps them in structure) but for the plugin kinds
/// and the plugin info, which are the host's own, so that 0.7's `ruleset`
/// is a kind like the others.
pub mod types {
    pub use super::v0_1::vigil::plugin::types::*;
    pub use crate::runtime::results::{PluginInfo, PluginKind};
}

pub use v0_1::vigil::plugin::history::MetricWindow;
pub use v0_1::vigil::plugin::host::LogLevel;
pub use v0_2::exports::vigil::plugin::conditioning::CheckItem;
pub use v0_2::exports::vigil::plugin::planning::PlanItem;
pub use v0_3::vigil::plugin::types::WindowSpec;
