//! Builds the bench components (`xtask/components`, a workspace of its own)
//! for `wasm32-wasip2` and tells the bench where they are.

fn main() -> Result<(), String> {
    vigil_wasm_build::build_components("vigil-bench-components", "VIGIL_BENCH_COMPONENTS")
}
