//! Builds the standard plugins (`plugins/*`) and embeds them in the `vigil`
//! binary, so `vigil demo` runs with nothing else installed. They are built
//! without WASI (`wasm32-unknown-unknown` linked into components,
//! `vigil_wasm_build::Target::NoWasi`): none of them reads a clock or draws
//! randomness, and a component that imports only the contract instantiates
//! in 0.69–0.73x the time, and loads in 0.7x (BENCHMARKS.md, "What was made
//! faster", 2026-12-07).
//!
//! The nested cargo uses its own target directory beside the outer one, so
//! the two never wait on each other's lock.

use std::path::PathBuf;

/// The standard plugins, in the order the demo loads them.
const PLUGINS: &[&str] = &[
    "health-score",
    "lead-score",
    "health-triggers",
    "usage-triggers",
    "tier-conditions",
    "escalation-actions",
];

fn main() -> Result<(), String> {
    let manifest_dir = PathBuf::from(vigil_wasm_build::env("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or("host/ has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(vigil_wasm_build::env("OUT_DIR")?);
    let target_dir = vigil_wasm_build::target_dir_beside(&out_dir, "vigil-plugins");

    for watched in ["plugins", "sdk", "wit", "Cargo.lock", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let mut args = vec!["--profile", "wasm-plugin"];
    for plugin in PLUGINS {
        args.extend(["-p", plugin]);
    }
    let target = vigil_wasm_build::Target::NoWasi;
    vigil_wasm_build::build(
        &workspace,
        target,
        &args,
        &target_dir,
        "the standard plugins",
    )?;

    let wasm_dir = target_dir.join(target.triple()).join("wasm-plugin");
    let mut generated = String::from(
        "/// The standard plugins, built from `plugins/` without WASI: (name, component bytes).\npub const STANDARD_PLUGINS: &[(&str, &[u8])] = &[\n",
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
