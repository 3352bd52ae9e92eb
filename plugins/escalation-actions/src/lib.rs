//! escalation-actions (placeholder)
