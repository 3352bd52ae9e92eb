//! tier-conditions (placeholder)
