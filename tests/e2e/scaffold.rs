//! `vigil plugin new` scaffolds a crate of every kind that passes its own
//! test, builds to Wasm, and loads in the host.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_host::runtime::bindings::types::PluginKind;
use vigil_host::scaffold::{KINDS, ScaffoldError, scaffold};

use crate::support::{assert_imports_only_the_contract, load, runtime};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo(dir: &Path, args: &[&str], target_dir: &Path) {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_scaffolded_plugin_of_every_kind_passes_its_test_builds_to_wasm_and_loads() {
    let parent = tempfile::tempdir().unwrap();
    // One target directory for all six, inside the one this test binary was
    // built in (`<target>/debug/deps/e2e-…`), so the SDK is compiled once.
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.ancestors().nth(3).unwrap().join("scaffold-tests");
    let sdk = workspace().join("sdk");
    let runtime = runtime();
    for (kind, expected) in KINDS.iter().zip([
        PluginKind::Scorer,
        PluginKind::Trigger,
        PluginKind::Condition,
        PluginKind::Action,
        PluginKind::Playbook,
        PluginKind::Ruleset,
    ]) {
        let name = format!("my-{kind}");
        let root = scaffold(parent.path(), &name, kind, &sdk).unwrap();
        cargo(&root, &["test", "--quiet"], &target_dir);
        cargo(
            &root,
            &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
            &target_dir,
        );
        let wasm = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let plugin = load(&runtime, &std::fs::read(&wasm).unwrap())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(plugin.kind(), expected);
        assert_eq!(plugin.name(), name);
    }
}

#[test]
fn a_scaffolded_plugin_builds_without_wasi_with_its_cargo_config_and_imports_only_the_contract() {
    let parent = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.ancestors().nth(3).unwrap().join("scaffold-tests");
    let root = scaffold(
        parent.path(),
        "my-plain",
        "trigger",
        &workspace().join("sdk"),
    )
    .unwrap();
    // The crate's `.cargo/config.toml` names the linker: no `--config`.
    cargo(
        &root,
        &[
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ],
        &target_dir,
    );
    let bytes =
        std::fs::read(target_dir.join("wasm32-unknown-unknown/release/my_plain.wasm")).unwrap();
    let runtime = runtime();
    assert_imports_only_the_contract(&runtime.inspect(&bytes), "my-plain");
    let plugin = load(&runtime, &bytes).unwrap();
    assert_eq!(plugin.kind(), PluginKind::Trigger);
}

#[test]
fn scaffolding_refuses_bad_names_unknown_kinds_and_existing_directories() {
    let parent = tempfile::tempdir().unwrap();
    let sdk = workspace().join("sdk");
    assert!(matches!(
        scaffold(parent.path(), "Bad_Name", "scorer", &sdk),
        Err(ScaffoldError::InvalidName(_))
    ));
    assert!(matches!(
        scaffold(parent.path(), "ok", "oracle", &sdk),
        Err(ScaffoldError::UnknownKind(_))
    ));
    scaffold(parent.path(), "taken", "scorer", &sdk).unwrap();
    assert!(matches!(
        scaffold(parent.path(), "taken", "scorer", &sdk),
        Err(ScaffoldError::Exists(_))
    ));
}
