//! vigil-host: loads sandboxed Wasm plugins (scorers, triggers, conditions,
//! actions, playbooks), runs events through them under fuel, time and memory
//! limits, and acts on what they decide.

pub mod history;
pub mod runtime;
pub mod standard;
