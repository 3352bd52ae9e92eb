//! Builds the standard plugins (`plugins/*`) for `wasm32-wasip2` and embeds
//! them in the `vigil` binary, so `vigil demo` runs with nothing else
//! installed.
//!
//! The nested cargo uses its own target directory beside the outer one, so
//! the two never wait on each other's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The standard plugins, in the order the demo loads them.
const PLUGINS: &[&str] = &[
    "health-score",
    "lead-score",
    "health-triggers",
    "usage-triggers",
    "tier-conditions",
    "escalation-actions",
];

/// Variables the outer cargo sets that must not leak into the nested build
/// (wrappers such as clippy-driver, coverage flags, the outer target dir).
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
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("host/ has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let target_dir = plugin_target_dir(&out_dir);

    for watched in ["plugins", "sdk", "wit", "Cargo.lock", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "wasm-plugin",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for plugin in PLUGINS {
        command.args(["-p", plugin]);
    }
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    let status = command
        .status()
        .map_err(|e| format!("could not run cargo to build the standard plugins: {e}"))?;
    if !status.success() {
        return Err(
            "building the standard plugins for wasm32-wasip2 failed (see above). If the target is missing, run `rustup toolchain install` in the repository (it reads rust-toolchain.toml) or `rustup target add wasm32-wasip2`."
                .into(),
        );
    }

    let wasm_dir = target_dir.join("wasm32-wasip2").join("wasm-plugin");
    let mut generated = String::from(
        "/// The standard plugins, built from `plugins/` for wasm32-wasip2: (name, component bytes).\npub const STANDARD_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for plugin in PLUGINS {
        let file = wasm_dir.join(format!("{}.wasm", plugin.replace('-', "_")));
        if !file.exists() {
            return Err(format!("{} was not built", file.display()));
        }
        generated.push_str(&format!(
            "    ({plugin:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("standard_plugins.rs"), generated)
        .map_err(|e| format!("could not write standard_plugins.rs: {e}"))?;
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// `<target>/vigil-plugins`, found from `OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`), so every
/// profile of the host shares one plugin build.
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("vigil-plugins"))
        .unwrap_or_else(|| out_dir.join("vigil-plugins"))
}
