//! vigil's task runner. `cargo xtask bench` (an alias in
//! `.cargo/config.toml`) compares vigil with what a user would pick instead
//! — rules in native Rust, an embedded rhai script, a zen-engine decision
//! graph — on one rule set ([`rules`]) over one generated portfolio, after
//! checking that all four decide alike. See `BENCHMARKS.md`.

pub mod bench;
pub mod engines;
pub mod rules;
