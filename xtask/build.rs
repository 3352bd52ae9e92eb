//! Builds the bench components (`xtask/components`, a workspace of its own)
//! for `wasm32-wasip2` and tells the bench where they are.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables of the outer cargo that must not leak into the nested build.
const SCRUBBED_ENV: &[&str] = &[
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

fn main() -> Result<(), String> {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let components = manifest_dir.join("components");
    let workspace = manifest_dir.parent().ok_or("xtask/ has no parent")?;
    for watched in [
        components.clone(),
        workspace.join("sdk"),
        workspace.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    // Beside the outer target directory, shared by every profile, so the
    // nested build never waits on the outer one's lock.
    let target_dir = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("vigil-bench-components"))
        .unwrap_or_else(|| out_dir.join("vigil-bench-components"));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&components)
        .args([
            "build",
            "--workspace",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo to build the bench components: {e}"))?;
    if !status.success() {
        return Err("building xtask/components for wasm32-wasip2 failed (see above); `rustup target add wasm32-wasip2` if the target is missing".into());
    }
    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    println!(
        "cargo:rustc-env=VIGIL_BENCH_COMPONENTS={}",
        wasm_dir.display()
    );
    Ok(())
}
