//! For vigil's build scripts (`host/build.rs`, `tests/build.rs`,
//! `xtask/build.rs`): build Wasm components with a nested cargo, for
//! `wasm32-wasip2`, into a target directory beside the outer one (shared by
//! every profile, so the nested build never waits on the outer one's lock),
//! with the outer cargo's wrappers and flags kept out of it.

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

/// Runs `cargo build --target wasm32-wasip2 ARGS --target-dir TARGET` in
/// `dir`; `what` names what is built in the error.
pub fn build(dir: &Path, args: &[&str], target_dir: &Path, what: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .args(["build", "--target", "wasm32-wasip2"])
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
        Err(format!(
            "building {what} for wasm32-wasip2 failed (see above). If the target is missing, run `rustup toolchain install` in the repository (it reads rust-toolchain.toml) or `rustup target add wasm32-wasip2`."
        ))
    }
}

/// Builds the component workspace in `<package>/components` (its own
/// workspace, release profile) for a package's tests or benches, and sets
/// `env_var` to the directory of the `.wasm` files for the package's code.
pub fn build_components(target_name: &str, env_var: &str) -> Result<(), String> {
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
        &["--workspace", "--release"],
        &target_dir,
        &components.display().to_string(),
    )?;
    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env={env_var}={}", wasm_dir.display());
    Ok(())
}
