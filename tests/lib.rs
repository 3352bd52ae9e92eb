//! The end-to-end tests live in `e2e/`; this crate has no library code.
//! Its build script builds the test components in `components/`.
