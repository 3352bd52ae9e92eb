//! Per plugin version statistics (calls, faults, fuel, latency) and the
//! circuit breaker that trips when a version faults repeatedly.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::runtime::InvocationRecord;

/// Call durations kept per version for the latency percentiles.
const LATENCY_SAMPLES: usize = 4096;

/// When the breaker trips: `faults` traps or limit hits within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Faults that trip it.
    pub faults: usize,
    /// Within this long.
    pub window: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            faults: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// A version's statistics on this host since it was loaded here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct StatsSnapshot {
    /// Calls made.
    pub invocations: u64,
    /// Calls that trapped or hit a limit.
    pub traps: u64,
    /// Calls that returned a domain error.
    pub plugin_errors: u64,
    /// Fuel burned, in all.
    pub fuel: u64,
    /// Median call duration over the recent calls, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile call duration over the recent calls, µs.
    pub latency_p99_us: Option<u64>,
}

#[derive(Debug, Default)]
struct VersionStats {
    name: String,
    version: String,
    invocations: u64,
    traps: u64,
    plugin_errors: u64,
    fuel: u64,
    latencies: VecDeque<u64>,
    recent_faults: VecDeque<Instant>,
    last_fault: String,
    tripped: bool,
}

/// A version whose breaker tripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// Its digest.
    pub digest: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Why: how many faults in how long, and the last one.
    pub reason: String,
}

/// Statistics of every version this host has called.
#[derive(Debug)]
pub struct Stats {
    breaker: Breaker,
    versions: Mutex<HashMap<String, VersionStats>>,
}

impl Stats {
    /// Empty statistics with `breaker`.
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            versions: Mutex::default(),
        }
    }

    /// Counts `records`; the versions whose breaker trips now (once each).
    pub fn record(&self, records: &[InvocationRecord]) -> Vec<Trip> {
        let Ok(mut versions) = self.versions.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut trips = Vec::new();
        for record in records {
            // Looked up before inserting: no copy of the digest per call.
            if !versions.contains_key(&*record.plugin.digest) {
                versions.insert(record.plugin.digest.to_string(), VersionStats::default());
            }
            let Some(stats) = versions.get_mut(&*record.plugin.digest) else {
                continue;
            };
            if stats.name.is_empty() {
                stats.name = record.plugin.name.to_string();
                stats.version = record.plugin.version.to_string();
            }
            stats.invocations += 1;
            stats.fuel += record.fuel_used;
            if stats.latencies.len() == LATENCY_SAMPLES {
                stats.latencies.pop_front();
            }
            stats.latencies.push_back(record.duration_us);
            if record.outcome.is_fault() {
                stats.traps += 1;
                stats.recent_faults.push_back(now);
                stats.last_fault = record.outcome.to_string();
                while stats
                    .recent_faults
                    .front()
                    .is_some_and(|at| now.duration_since(*at) > self.breaker.window)
                {
                    stats.recent_faults.pop_front();
                }
                if !stats.tripped && stats.recent_faults.len() >= self.breaker.faults {
                    stats.tripped = true;
                    trips.push(Trip {
                        digest: record.plugin.digest.to_string(),
                        name: stats.name.clone(),
                        version: stats.version.clone(),
                        reason: format!(
                            "{} traps or limit hits within {} s (last: {})",
                            stats.recent_faults.len(),
                            self.breaker.window.as_secs(),
                            stats.last_fault
                        ),
                    });
                }
            } else if !record.outcome.is_ok() {
                stats.plugin_errors += 1;
            }
        }
        trips
    }

    /// Lets the breaker of `digest` trip again (its quarantine failed, or
    /// an operator released it).
    pub fn rearm(&self, digest: &str) {
        if let Ok(mut versions) = self.versions.lock()
            && let Some(stats) = versions.get_mut(digest)
        {
            stats.tripped = false;
            stats.recent_faults.clear();
        }
    }

    /// The statistics of `digest` on this host.
    pub fn snapshot(&self, digest: &str) -> StatsSnapshot {
        let Ok(versions) = self.versions.lock() else {
            return StatsSnapshot::default();
        };
        let Some(stats) = versions.get(digest) else {
            return StatsSnapshot::default();
        };
        let mut sorted: Vec<u64> = stats.latencies.iter().copied().collect();
        sorted.sort_unstable();
        let percentile =
            |p: usize| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) * p).div_ceil(100)]);
        StatsSnapshot {
            invocations: stats.invocations,
            traps: stats.traps,
            plugin_errors: stats.plugin_errors,
            fuel: stats.fuel,
            latency_p50_us: percentile(50),
            latency_p99_us: percentile(99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Outcome;

    fn record(digest: &str, outcome: Outcome, duration_us: u64) -> InvocationRecord {
        InvocationRecord {
            plugin: crate::runtime::PluginRef::new("p", "1.0.0", digest),
            call: "score",
            fuel_used: 10,
            duration_us,
            logs_dropped: 0,
            outcome,
        }
    }

    #[test]
    fn the_breaker_trips_once_at_the_threshold_and_not_on_plugin_errors() {
        let stats = Stats::new(Breaker {
            faults: 3,
            window: Duration::from_secs(60),
        });
        let error = Outcome::PluginError {
            kind: "internal".into(),
            message: "no".into(),
        };
        assert!(stats.record(&[record("a", error.clone(), 5)]).is_empty());
        assert!(stats.record(&[record("a", error, 5)]).is_empty());
        assert!(
            stats
                .record(&[record("a", Outcome::OutOfFuel, 5)])
                .is_empty()
        );
        assert!(
            stats
                .record(&[record("a", Outcome::OutOfFuel, 5)])
                .is_empty()
        );
        let trips = stats.record(&[
            record("a", Outcome::Timeout, 5),
            record("b", Outcome::Ok, 5),
        ]);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].digest, "a");
        assert!(trips[0].reason.contains("3 traps"), "{}", trips[0].reason);
        assert!(
            stats
                .record(&[record("a", Outcome::OutOfFuel, 5)])
                .is_empty()
        );
        let snapshot = stats.snapshot("a");
        assert_eq!(
            (snapshot.invocations, snapshot.traps, snapshot.plugin_errors),
            (6, 4, 2)
        );
        stats.rearm("a");
        assert!(
            stats
                .record(&[record("a", Outcome::OutOfFuel, 5)])
                .is_empty()
        );
    }

    #[test]
    fn latency_percentiles_come_from_the_recent_calls() {
        let stats = Stats::new(Breaker::default());
        let records: Vec<_> = (1..=100).map(|us| record("a", Outcome::Ok, us)).collect();
        stats.record(&records);
        let snapshot = stats.snapshot("a");
        assert_eq!(snapshot.latency_p50_us, Some(51));
        assert_eq!(snapshot.latency_p99_us, Some(100));
        assert_eq!(stats.snapshot("unknown"), StatsSnapshot::default());
    }
}
