//! The metric history of one account, as plugins read it through the
//! `history` import.
//!
//! For every event the host records a sample `1` under the event's kind and a
//! sample under each numeric top-level payload field (dashes for
//! underscores); for every score, its value under the score's name.

use std::collections::BTreeMap;

use crate::runtime::bindings::MetricWindow;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Samples older than this (before the newest one) are dropped.
const RETENTION_MS: i64 = 400 * DAY_MS;

/// Time-ordered samples per metric for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricHistory {
    series: BTreeMap<String, Vec<(i64, f64)>>,
}

impl MetricHistory {
    /// Records `value` for `metric` at `at` (milliseconds since the epoch).
    pub fn record(&mut self, metric: &str, at: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let series = match self.series.get_mut(metric) {
            Some(series) => series,
            None => self.series.entry(metric.to_string()).or_default(),
        };
        // Events mostly arrive in order; keep the series sorted either way.
        let position = series.partition_point(|(t, _)| *t <= at);
        series.insert(position, (at, value));
        if let Some(newest) = series.last().map(|(t, _)| *t) {
            let expired = series.partition_point(|(t, _)| *t < newest.saturating_sub(RETENTION_MS));
            if expired > 0 {
                series.drain(..expired);
            }
        }
    }

    /// Records what an event contributes: `1` under its kind and each numeric
    /// top-level field of its JSON object payload.
    pub fn record_event(&mut self, kind: &str, at: i64, payload: &serde_json::Value) {
        self.record(kind, at, 1.0);
        if let Some(fields) = payload.as_object() {
            for (field, value) in fields {
                if let Some(number) = value.as_f64() {
                    // Most fields need no renaming: skip the copy then.
                    if field.contains('_') {
                        self.record(&metric_name(field), at, number);
                    } else {
                        self.record(field, at, number);
                    }
                }
            }
        }
    }

    /// Aggregates `metric` over `(end - days, end]` where
    /// `end = now - offset_days` (in days).
    pub fn window(&self, metric: &str, now: i64, days: u32, offset_days: u32) -> MetricWindow {
        let end = now.saturating_sub(i64::from(offset_days) * DAY_MS);
        let start = end.saturating_sub(i64::from(days) * DAY_MS);
        let samples = self.series.get(metric).map(Vec::as_slice).unwrap_or(&[]);
        let lo = samples.partition_point(|(t, _)| *t <= start);
        let hi = samples.partition_point(|(t, _)| *t <= end);
        aggregate(samples.get(lo..hi).unwrap_or(&[]))
    }

    /// The metrics held, by name.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// The time of the newest sample of any metric.
    pub fn newest_sample(&self) -> Option<i64> {
        self.series
            .values()
            .filter_map(|series| series.last().map(|(t, _)| *t))
            .max()
    }

    /// The number of samples held, over all metrics.
    pub fn len(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.series.values().all(Vec::is_empty)
    }
}

/// `active_users` → `active-users`.
pub fn metric_name(field: &str) -> String {
    field.replace('_', "-")
}

fn aggregate(samples: &[(i64, f64)]) -> MetricWindow {
    let Some(((_, first), (_, last))) = samples.first().zip(samples.last()) else {
        return MetricWindow {
            count: 0,
            sum: 0.0,
            min: 0.0,
            max: 0.0,
            first: 0.0,
            last: 0.0,
        };
    };
    let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
    for (_, value) in samples {
        sum += value;
        min = min.min(*value);
        max = max.max(*value);
    }
    MetricWindow {
        count: u32::try_from(samples.len()).unwrap_or(u32::MAX),
        sum,
        min,
        max,
        first: *first,
        last: *last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_272_000_000;

    #[test]
    fn a_window_covers_the_days_that_end_offset_days_before_now() {
        let mut history = MetricHistory::default();
        for day in 0..60 {
            history.record("logins", NOW - day * DAY_MS, day as f64);
        }
        let recent = history.window("logins", NOW, 30, 0);
        assert_eq!(recent.count, 30);
        assert_eq!(recent.first, 29.0);
        assert_eq!(recent.last, 0.0);
        let earlier = history.window("logins", NOW, 30, 30);
        assert_eq!(earlier.count, 30);
        assert_eq!(earlier.min, 30.0);
        assert_eq!(earlier.max, 59.0);
    }

    #[test]
    fn an_unknown_metric_gives_an_empty_window() {
        let history = MetricHistory::default();
        let window = history.window("nps", NOW, 90, 0);
        assert_eq!(window.count, 0);
        assert_eq!(window.sum, 0.0);
    }

    #[test]
    fn an_event_records_its_kind_and_numeric_fields() {
        let mut history = MetricHistory::default();
        let payload = serde_json::json!({"active_users": 42, "logins": 300, "note": "x"});
        history.record_event("usage.daily", NOW, &payload);
        assert_eq!(history.window("usage.daily", NOW, 1, 0).count, 1);
        assert_eq!(history.window("active-users", NOW, 1, 0).last, 42.0);
        assert_eq!(history.window("logins", NOW, 1, 0).sum, 300.0);
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn out_of_order_samples_are_kept_in_time_order() {
        let mut history = MetricHistory::default();
        history.record("nps", NOW - DAY_MS, 9.0);
        history.record("nps", NOW - 3 * DAY_MS, 3.0);
        let window = history.window("nps", NOW, 7, 0);
        assert_eq!((window.first, window.last), (3.0, 9.0));
    }

    #[test]
    fn samples_past_retention_are_dropped() {
        let mut history = MetricHistory::default();
        history.record("logins", NOW - 500 * DAY_MS, 1.0);
        history.record("logins", NOW, 1.0);
        assert_eq!(history.len(), 1);
    }
}
