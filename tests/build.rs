//! Builds the test components (`tests/components`, a workspace of its own)
//! for `wasm32-wasip2` and tells the tests where they are.

fn main() -> Result<(), String> {
    vigil_wasm_build::build_components("vigil-test-components", "VIGIL_TEST_COMPONENTS")
}
