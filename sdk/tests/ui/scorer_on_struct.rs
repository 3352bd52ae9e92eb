#[vigil_sdk::scorer]
struct NotAFunction;

fn main() {}
