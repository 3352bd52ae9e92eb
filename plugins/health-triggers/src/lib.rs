//! health-triggers (placeholder)
