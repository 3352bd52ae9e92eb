//! Builds the test components (`tests/components`, a workspace of its own)
//! for `wasm32-wasip2` and tells the tests where they are. `own-allocator`
//! is built alone, after the others, into the same place: in their
//! workspace, cargo would turn on the SDK's `fast-alloc` for it as it does
//! for them.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    vigil_wasm_build::build_components("vigil-test-components", "VIGIL_TEST_COMPONENTS")?;
    let manifest_dir = PathBuf::from(vigil_wasm_build::env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(vigil_wasm_build::env("OUT_DIR")?);
    let own_allocator = manifest_dir.join("components").join("own-allocator");
    vigil_wasm_build::build(
        &own_allocator,
        &["--release"],
        &vigil_wasm_build::target_dir_beside(&out_dir, "vigil-test-components"),
        &own_allocator.display().to_string(),
    )
}
