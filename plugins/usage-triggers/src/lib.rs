//! usage-triggers (placeholder)
