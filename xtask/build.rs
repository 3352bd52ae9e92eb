//! Builds the bench components (`xtask/components`, a workspace of its own)
//! without WASI, as the standard plugins are (`wasm32-unknown-unknown`
//! linked into components, `vigil_wasm_build::Target::NoWasi`), and tells
//! the bench where they are.

fn main() -> Result<(), String> {
    vigil_wasm_build::build_components(
        vigil_wasm_build::Target::NoWasi,
        "vigil-bench-components",
        "VIGIL_BENCH_COMPONENTS",
    )
}
