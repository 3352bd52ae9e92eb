//! The standard plugins, embedded in the binary at build time.

include!(concat!(env!("OUT_DIR"), "/standard_plugins.rs"));
