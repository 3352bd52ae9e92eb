//! Macro misuse is a compile error that points at the offending code; use
//! at the limits compiles.

#[test]
fn macros_refuse_misuse_at_compile_time_and_accept_use_at_the_limits() {
    // One `TestCases` for both: trybuild builds every case in one project
    // when it is dropped.
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui-pass/*.rs");
}
