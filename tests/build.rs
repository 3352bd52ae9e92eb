//! Builds the test components (`tests/components`, a workspace of its own)
//! for `wasm32-wasip2` and tells the tests where they are. `own-allocator`
//! is built alone, after the others, into the same place: in their
//! workspace, cargo would turn on the SDK's `fast-alloc` for it as it does
//! for them. `panicker` is built a second time without WASI, as the
//! standard plugins are, for the tests of a panic's message in that build.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    vigil_wasm_build::build_components(
        vigil_wasm_build::Target::WasiP2,
        "vigil-test-components",
        "VIGIL_TEST_COMPONENTS",
    )?;
    let manifest_dir = PathBuf::from(vigil_wasm_build::env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(vigil_wasm_build::env("OUT_DIR")?);
    let own_allocator = manifest_dir.join("components").join("own-allocator");
    let target_dir = vigil_wasm_build::target_dir_beside(&out_dir, "vigil-test-components");
    vigil_wasm_build::build(
        &own_allocator,
        vigil_wasm_build::Target::WasiP2,
        &["--release"],
        &target_dir,
        &own_allocator.display().to_string(),
    )?;
    let no_wasi = vigil_wasm_build::Target::NoWasi;
    vigil_wasm_build::build(
        &manifest_dir.join("components"),
        no_wasi,
        &["--release", "-p", "panicker"],
        &target_dir,
        "panicker without WASI",
    )?;
    println!(
        "cargo:rustc-env=VIGIL_TEST_COMPONENTS_NO_WASI={}",
        target_dir.join(no_wasi.triple()).join("release").display()
    );
    Ok(())
}
