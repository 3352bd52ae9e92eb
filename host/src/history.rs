//! The metric history of one account, as plugins read it through the
//! `history` import.
//!
//! For every event the host records a sample `1` under the event's kind and a
//! sample under each numeric top-level payload field (dashes for
//! underscores); for every score, its value under the score's name.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::runtime::bindings::MetricWindow;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Samples older than this (before the newest one) are dropped.
const RETENTION_MS: i64 = 400 * DAY_MS;

/// Time-ordered samples per metric for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricHistory {
    /// Hashed rather than ordered: every window a plugin reads and every
    /// sample recorded looks a metric up (some 16 times an event), and an
    /// ordered map compares the name with several keys to find it.
    /// foldhash's state is seeded at random per map (what foldhash calls
    /// minimally DoS-resistant): a client that names payload fields cannot
    /// see the hashes, so it cannot pick names that collide. A name of up
    /// to 24 bytes (every metric name the standard plugins read) is kept
    /// in the map's own slot rather than in an allocation of its own, so
    /// comparing it with the name looked up reads memory the lookup has
    /// just read: over a large portfolio most account states are out of
    /// the cache, and the name's own allocation was one more miss a
    /// lookup (BENCHMARKS.md, "What was made faster", 2026-12-07 17:15).
    series: foldhash::HashMap<CompactString, Vec<(i64, f64)>>,
}

impl MetricHistory {
    /// Records `value` for `metric` at `at` (milliseconds since the epoch).
    pub fn record(&mut self, metric: &str, at: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let series = match self.series.get_mut(metric) {
            Some(series) => series,
            None => self.series.entry(CompactString::from(metric)).or_default(),
        };
        // Events mostly arrive in order: a sample at or after the newest
        // goes on the end with no search. The series stays sorted either
        // way, samples of one time in the order they came.
        if series.last().is_none_or(|(newest, _)| *newest <= at) {
            series.push((at, value));
        } else {
            let position = series.partition_point(|(t, _)| *t <= at);
            series.insert(position, (at, value));
        }
        // The samples past retention are searched for only when the oldest
        // one is past it, not at every sample recorded.
        if let (Some((oldest, _)), Some((newest, _))) = (series.first(), series.last()) {
            let horizon = newest.saturating_sub(RETENTION_MS);
            if *oldest < horizon {
                let expired = series.partition_point(|(t, _)| *t < horizon);
                series.drain(..expired);
            }
        }
    }

    /// Records what an event contributes: `1` under its kind and each numeric
    /// top-level field of its JSON object payload.
    pub fn record_event(&mut self, kind: &str, at: i64, payload: &PayloadNumbers<'_>) {
        self.record(kind, at, 1.0);
        for (field, number) in payload.iter() {
            let Some(number) = number.as_f64() else {
                continue;
            };
            with_metric_name(field, |name| self.record(name, at, number));
        }
    }

    /// Aggregates `metric` over `(end - days, end]` where
    /// `end = now - offset_days` (in days).
    pub fn window(&self, metric: &str, now: i64, days: u32, offset_days: u32) -> MetricWindow {
        let samples = self.samples(metric);
        let (start, end) = window_bounds(now, days, offset_days);
        window_between(samples, start, samples_up_to(samples, end)).0
    }

    /// The samples of `metric`, oldest first, as [`window_between`] takes them
    /// (none for a metric never recorded).
    pub(crate) fn samples(&self, metric: &str) -> &[(i64, f64)] {
        self.series.get(metric).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The metrics held, in no particular order.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(CompactString::as_str)
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

    /// Whether no metric is held at all, not even one without samples:
    /// what a new history holds.
    pub(crate) fn holds_no_metric(&self) -> bool {
        self.series.is_empty()
    }
}

/// The numeric top-level fields of an event's JSON object payload: all the
/// host takes from a payload. Read straight from the text, without building
/// the document (nested values and strings are skipped, not kept), since it
/// is read for every event evaluated.
///
/// Fields are in name order; a name given twice counts once, with its last
/// value, as in a parsed JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayloadNumbers<'a> {
    fields: Vec<(Cow<'a, str>, Number)>,
}

impl<'a> PayloadNumbers<'a> {
    /// Reads `payload`, which must be one JSON object.
    pub fn parse(payload: &'a str) -> Result<Self, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(payload);
        let mut fields = deserializer.deserialize_map(FieldsVisitor)?;
        deserializer.end()?;
        // A stable sort keeps repeats in document order; each repeat hands
        // its value to the one kept before it, so the last value of each
        // name is the one that stays. In place: the payload's fields are
        // one list from here to the end.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|repeat, kept| {
            let same = repeat.0 == kept.0;
            if same {
                std::mem::swap(&mut repeat.1, &mut kept.1);
            }
            same
        });
        Ok(Self {
            fields: fields
                .into_iter()
                .filter_map(|(name, number)| number.map(|number| (name, number)))
                .collect(),
        })
    }

    /// The numeric fields, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Number)> {
        self.fields
            .iter()
            .map(|(name, number)| (name.as_ref(), number))
    }

    /// The field `name`, if it is a number.
    pub fn get(&self, name: &str) -> Option<&Number> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, number)| number)
    }
}

/// Collects an object's fields: each name, with its value if a number.
struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(Cow<'de, str>, Option<Number>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(FieldName(name)) = map.next_key()? {
            let FieldValue(number) = map.next_value()?;
            fields.push((name, number));
        }
        Ok(fields)
    }
}

/// A field name, borrowed from the payload unless it has escapes.
struct FieldName<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = FieldName<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A field's value: its number, or nothing for any other JSON value (which
/// is read through and dropped).
struct FieldValue(Option<Number>);

impl<'de> de::Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FieldValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(FieldValue(Some(Number::from(v))))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(FieldValue(Some(Number::from(v))))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(FieldValue(Number::from_f64(v)))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FieldValue(None))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(FieldValue(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FieldValue(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue(None))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// The times a window is over, `(start, end]`, for
/// [`MetricHistory::window`]'s arguments.
pub(crate) fn window_bounds(now: i64, days: u32, offset_days: u32) -> (i64, i64) {
    let end = now.saturating_sub(i64::from(offset_days) * DAY_MS);
    let start = end.saturating_sub(i64::from(days) * DAY_MS);
    (start, end)
}

/// How many of `samples` (time-ordered) are at or before `at`. The newest
/// sample is looked at first: a window that ends at the evaluation time
/// ends after the event being evaluated, the newest sample, so most take
/// every sample up to the end without a search.
pub(crate) fn samples_up_to(samples: &[(i64, f64)], at: i64) -> usize {
    match samples.last() {
        Some((newest, _)) if *newest > at => samples.partition_point(|(t, _)| *t <= at),
        _ => samples.len(),
    }
}

/// The window of the first `end_at` of `samples` (the samples up to its
/// end, as [`samples_up_to`] counts them) after `start`, and the index of
/// its first sample: the end of a window that ends where this one starts.
pub(crate) fn window_between(
    samples: &[(i64, f64)],
    start: i64,
    end_at: usize,
) -> (MetricWindow, usize) {
    let up_to_end = samples.get(..end_at).unwrap_or(samples);
    let start_at = up_to_end.partition_point(|(t, _)| *t <= start);
    let window = aggregate(up_to_end.get(start_at..).unwrap_or(&[]));
    (window, start_at)
}

/// `active_users` → `active-users`.
pub fn metric_name(field: &str) -> String {
    field.replace('_', "-")
}

/// Calls `f` with `field`'s [`metric_name`] without allocating it when it
/// can: most fields need no renaming, and a short one is renamed on the
/// stack (this runs for every numeric payload field of every event).
fn with_metric_name<R>(field: &str, f: impl FnOnce(&str) -> R) -> R {
    if !field.contains('_') {
        return f(field);
    }
    let mut renamed = [0u8; 64];
    if let Some(bytes) = renamed.get_mut(..field.len()) {
        for (to, from) in bytes.iter_mut().zip(field.bytes()) {
            *to = if from == b'_' { b'-' } else { from };
        }
        // `_` and `-` are both ASCII, so the bytes are still UTF-8.
        if let Ok(name) = std::str::from_utf8(bytes) {
            return f(name);
        }
    }
    f(&metric_name(field))
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
    // Every sample is finite (`record` keeps no other), so a comparison
    // is the minimum and the maximum: `f64::min` and `max` also handle
    // NaN, which put a compare and a blend on each loop-carried chain.
    // Between `0.0` and `-0.0` the first seen is kept, where `f64::min`
    // leaves the choice open.
    for &(_, value) in samples {
        sum += value;
        if value < min {
            min = value;
        }
        if value > max {
            max = value;
        }
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
    fn a_windows_minimum_and_maximum_are_its_extreme_samples_and_ties_keep_the_first() {
        let mut history = MetricHistory::default();
        for (day, value) in [3.0, -1.5, 7.0, 7.0, -0.0, 0.0, 2.0]
            .into_iter()
            .enumerate()
        {
            history.record("nps", NOW - 10 * DAY_MS + day as i64 * DAY_MS, value);
        }
        let window = history.window("nps", NOW, 30, 0);
        assert_eq!((window.min, window.max), (-1.5, 7.0));
        assert_eq!(window.sum, 17.5);

        // Of two equal extremes, the first seen: deterministic, where
        // `f64::min` may return either zero.
        let mut zeros = MetricHistory::default();
        zeros.record("nps", NOW - 2 * DAY_MS, -0.0);
        zeros.record("nps", NOW - DAY_MS, 0.0);
        let window = zeros.window("nps", NOW, 30, 0);
        assert!(window.min.is_sign_negative() && window.max.is_sign_negative());
        // A NaN or infinite sample is never recorded, so it cannot reach
        // the comparisons.
        zeros.record("nps", NOW, f64::NAN);
        zeros.record("nps", NOW, f64::NEG_INFINITY);
        assert_eq!(zeros.window("nps", NOW, 30, 0).count, 2);
    }

    #[test]
    fn a_window_ending_before_the_newest_sample_leaves_the_later_ones_out() {
        let mut history = MetricHistory::default();
        for day in 0..10 {
            history.record("logins", NOW - day * DAY_MS, day as f64);
        }
        // (NOW - 5 days, NOW - 3 days]: days 3 and 4, not 5.
        let window = history.window("logins", NOW - 3 * DAY_MS, 2, 0);
        assert_eq!((window.count, window.first, window.last), (2, 4.0, 3.0));
        // The same window by offset, and one ending at the newest sample.
        assert_eq!(history.window("logins", NOW, 2, 3), window);
        assert_eq!(history.window("logins", NOW, 1, 0).last, 0.0);
        assert_eq!(
            samples_up_to(history.samples("logins"), NOW - 3 * DAY_MS),
            7
        );
        assert_eq!(samples_up_to(history.samples("logins"), NOW), 10);
        assert_eq!(samples_up_to(&[], NOW), 0);
    }

    #[test]
    fn an_unknown_metric_gives_an_empty_window() {
        let history = MetricHistory::default();
        let window = history.window("nps", NOW, 90, 0);
        assert_eq!(window.count, 0);
        assert_eq!(window.sum, 0.0);
    }

    fn numbers(payload: &str) -> PayloadNumbers<'_> {
        match PayloadNumbers::parse(payload) {
            Ok(numbers) => numbers,
            Err(error) => panic!("{payload}: {error}"),
        }
    }

    #[test]
    fn an_event_records_its_kind_and_numeric_fields() {
        let mut history = MetricHistory::default();
        let payload = numbers(r#"{"active_users": 42, "logins": 300, "note": "x"}"#);
        history.record_event("usage.daily", NOW, &payload);
        assert_eq!(history.window("usage.daily", NOW, 1, 0).count, 1);
        assert_eq!(history.window("active-users", NOW, 1, 0).last, 42.0);
        assert_eq!(history.window("logins", NOW, 1, 0).sum, 300.0);
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn a_field_is_recorded_under_its_name_with_dashes_for_underscores_whatever_its_length() {
        let long = format!("{}_total", "x".repeat(80));
        let payload_text =
            format!(r#"{{"seats_used": 1, "ünïcode_field": 2, "{long}": 3, "plain": 4, "_": 5}}"#);
        let payload = numbers(&payload_text);
        let mut history = MetricHistory::default();
        history.record_event("usage.daily", NOW, &payload);
        let mut names: Vec<&str> = history.metric_names().collect();
        names.sort_unstable();
        let long_renamed = format!("{}-total", "x".repeat(80));
        let mut expected = vec![
            "-",
            "plain",
            "seats-used",
            "usage.daily",
            "ünïcode-field",
            long_renamed.as_str(),
        ];
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(history.window(&long_renamed, NOW, 1, 0).sum, 3.0);
        assert_eq!(history.window("ünïcode-field", NOW, 1, 0).sum, 2.0);
    }

    #[test]
    fn a_payload_gives_the_numbers_a_parsed_json_object_gives() {
        let payloads = [
            r#"{"logins": 3, "nested": {"logins": 9, "deep": [1, {"x": 2}]}, "list": [1, 2]}"#,
            r#"{"b": 1, "a": -2.5, "c": "3", "d": true, "e": null, "f": 1e3}"#,
            r#"{"x": 1, "x": "no longer a number", "y": "a", "y": 7}"#,
            r#"{"esc\u0061ped": 4, "big": 18446744073709551615, "neg": -9223372036854775808}"#,
            r#"  {"active_users": 12, "active-users": 13}  "#,
            "{}",
        ];
        for payload in payloads {
            let value: serde_json::Value = match serde_json::from_str(payload) {
                Ok(value) => value,
                Err(error) => panic!("{payload}: {error}"),
            };
            let expected: Vec<(String, serde_json::Number)> = value
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| value.as_number().map(|n| (name.clone(), n.clone())))
                .collect();
            let read: Vec<(String, serde_json::Number)> = numbers(payload)
                .iter()
                .map(|(name, number)| (name.to_string(), number.clone()))
                .collect();
            assert_eq!(read, expected, "{payload}");
        }
    }

    #[test]
    fn a_payload_that_is_not_one_json_object_is_refused() {
        for payload in ["[1]", "3", "\"x\"", "{\"a\": 1} {}", "{\"a\": }", ""] {
            assert!(PayloadNumbers::parse(payload).is_err(), "{payload}");
        }
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

    #[test]
    fn samples_of_one_time_keep_their_order_and_a_late_one_past_retention_is_dropped() {
        let mut history = MetricHistory::default();
        for (at, value) in [
            (NOW - 2 * DAY_MS, 1.0),
            (NOW, 2.0),
            (NOW, 3.0),
            (NOW - DAY_MS, 4.0),
            (NOW - 2 * DAY_MS, 5.0),
            (NOW - 401 * DAY_MS, 6.0),
            (NOW, 7.0),
        ] {
            history.record("nps", at, value);
        }
        assert_eq!(
            history.samples("nps"),
            &[
                (NOW - 2 * DAY_MS, 1.0),
                (NOW - 2 * DAY_MS, 5.0),
                (NOW - DAY_MS, 4.0),
                (NOW, 2.0),
                (NOW, 3.0),
                (NOW, 7.0),
            ]
        );
        // A newer sample moves the horizon (400 days before it) past the
        // oldest ones; a sample exactly at the horizon is kept.
        history.record("nps", NOW + 399 * DAY_MS, 8.0);
        assert_eq!(
            history.samples("nps"),
            &[
                (NOW - DAY_MS, 4.0),
                (NOW, 2.0),
                (NOW, 3.0),
                (NOW, 7.0),
                (NOW + 399 * DAY_MS, 8.0)
            ]
        );
    }
}
