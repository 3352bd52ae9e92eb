//! Macro misuse is a compile error that points at the offending code.

#[test]
fn macro_misuse_gives_diagnostics_that_point_at_the_code() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
