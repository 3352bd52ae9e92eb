//! lead-score (placeholder)
