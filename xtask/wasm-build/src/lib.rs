//! For vigil's build scripts (`host/build.rs`, `tests/build.rs`,
//! `xtask/build.rs`): build Wasm components with a nested cargo, for one of
//! the two [`Target`]s, into a target directory beside the outer one
//! (shared by every profile, so the nested build never waits on the outer
//! one's lock), with the outer cargo's wrappers and flags kept out of it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables the outer cargo sets that must not leak into the nested build
/// (wrappers such as clippy-driver, coverage flags, the outer target dir).
pub const SCRUBBED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTDOCFLAGS",
    "CARGO_LLVM_COV",
];

/// What a component is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `wasm32-wasip2`: Rust's `std` on WASI, so the component imports the
    /// `wasi:*` interfaces its standard library reaches (stdio for a panic
    /// message, exit, the environment: thirteen in a plugin that uses none
    /// of them, more with `std`'s clocks or randomness), even when the
    /// plugin never calls them. For plugins that use `std`'s clock or
    /// randomness, and for the test components that check how the host
    /// answers those imports.
    WasiP2,
    /// `wasm32-unknown-unknown`, linked into a component by the toolchain's
    /// own `wasm-component-ld` (shipped with Rust for `wasm32-wasip2`): no
    /// WASI, so the component imports only the contract's interfaces, and
    /// an instance has a fifth of the imports to wire up. The standard
    /// plugins and the bench components are built this way: they
    /// instantiate in 0.69–0.73x the time of the same plugins built for
    /// `wasm32-wasip2` (BENCHMARKS.md, "What was made faster",
    /// 2026-12-07). A panic's message reaches the host through the SDK's
    /// panic hook and the `host.log` import instead of stderr.
    NoWasi,
}

impl Target {
    /// The target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::WasiP2 => "wasm32-wasip2",
            Target::NoWasi => "wasm32-unknown-unknown",
        }
    }

    /// Cargo's options for the target: the triple, and for
    /// `wasm32-unknown-unknown` the linker that makes a component of it.
    fn cargo_args(self) -> Vec<&'static str> {
        let mut args = vec!["--target", self.triple()];
        if self == Target::NoWasi {
            args.extend([
                "--config",
                "target.wasm32-unknown-unknown.linker=\"wasm-component-ld\"",
            ]);
        }
        args
    }
}

/// A variable cargo sets for build scripts.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// `<target>/<name>`, found from `OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`).
pub fn target_dir_beside(out_dir: &Path, name: &str) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join(name))
        .unwrap_or_else(|| out_dir.join(name))
}

/// Runs `cargo build` for `target` with `ARGS --target-dir TARGET_DIR` in
/// `dir`; `what` names what is built in the error. The `.wasm` files land
/// in `TARGET_DIR/<triple>/<profile>`.
pub fn build(
    dir: &Path,
    target: Target,
    args: &[&str],
    target_dir: &Path,
    what: &str,
) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .arg("build")
        .args(target.cargo_args())
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo to build {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let triple = target.triple();
        Err(format!(
            "building {what} for {triple} failed (see above). If the target is missing, run `rustup toolchain install` in the repository (it reads rust-toolchain.toml) or `rustup target add {triple}`."
        ))
    }
}

/// Builds the component workspace in `<package>/components` (its own
/// workspace, release profile) for `target`, for a package's tests or
/// benches, and sets `env_var` to the directory of the `.wasm` files for
/// the package's code.
pub fn build_components(target: Target, target_name: &str, env_var: &str) -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let components = manifest_dir.join("components");
    let workspace = manifest_dir
        .parent()
        .ok_or("the package has no parent directory")?;
    for watched in [
        components.clone(),
        workspace.join("sdk"),
        workspace.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    let target_dir = target_dir_beside(&out_dir, target_name);
    build(
        &components,
        target,
        &["--workspace", "--release"],
        &target_dir,
        &components.display().to_string(),
    )?;
    let wasm_dir = target_dir.join(target.triple()).join("release");
    println!("cargo:rustc-env={env_var}={}", wasm_dir.display());
    Ok(())
}
