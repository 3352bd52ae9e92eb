//! End-to-end tests: plugins built to real Wasm components, run through the
//! real host runtime and pipeline.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod batching;
mod contained_failures;
mod contract;
mod determinism;
mod lifecycle;
mod loading;
mod lowering;
mod pipeline;
mod rulesets;
mod scaffold;
mod service;
mod standard_plugins;
mod store;
mod support;
