//! Host bindings of the plugin contract `vigil:plugin@0.1.0`.
//!
//! One host-side world includes every plugin world, so a single set of types
//! and import traits serves all kinds; which exports a component actually
//! has is looked up per interface at load time.

#![allow(missing_docs, clippy::all)]

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
pub use vigil::plugin::history::MetricWindow;
pub use vigil::plugin::host::LogLevel;
pub use vigil::plugin::types;
