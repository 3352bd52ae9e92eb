//! vigil-host: loads sandboxed Wasm plugins (scorers, triggers, conditions,
//! actions, playbooks), runs events through them under fuel, time and memory
//! limits, and acts on what they decide.
//!
//! - [`api`]: the HTTP API (axum), problem+json errors.
//! - [`client`]: a client of a running server's API.
//! - [`connectors`]: how intents are carried out (log, webhooks).
//! - [`runtime`]: the engine, load-time checks, contained calls.
//! - [`pipeline`]: scorers → triggers → policy → conditions → actions.
//! - [`names`]: wire names of the contract's enums.
//! - [`metrics`]: Prometheus counters per plugin and endpoint.
//! - [`history`]: per-account metric history behind the `history` import.
//! - [`plugin_dir`] and [`standard`]: where plugins come from.
//! - [`store`]: PostgreSQL or SQLite: accounts, events, scores, the audit chain.
//! - [`service`]: group commit, the evaluator, host coordination (leases,
//!   the scheduler) and the intent dispatcher.
//! - [`lifecycle`]: the plugin registry, deploys, hot reload, rollback and
//!   quarantine.
//! - [`demo`] and [`scaffold`]: `vigil demo` and `vigil plugin new`.

pub mod api;
pub mod client;
pub mod connectors;
pub mod demo;
pub mod history;
pub mod lifecycle;
pub mod metrics;
pub mod names;
pub mod pipeline;
pub mod plugin_dir;
mod prefetch;
pub mod runtime;
pub mod scaffold;
pub mod service;
pub mod standard;
pub mod store;
