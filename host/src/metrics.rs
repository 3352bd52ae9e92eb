//! Prometheus metrics (OpenMetrics text): HTTP requests, events ingested,
//! pipeline runs, health-score reads by where they were answered from, and
//! per plugin version: invocations, faults (traps and limit hits), plugin
//! errors and fuel burned.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::runtime::InvocationRecord;

/// An HTTP request's route and answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The method.
    pub method: String,
    /// The route template (`/api/v1/customers/{id}/health-score`).
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// A plugin version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// Its name.
    pub plugin: String,
    /// Its version.
    pub version: String,
}

/// An intent's delivery result.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// `delivered` or `failed`.
    pub state: String,
}

/// Where a health-score read was answered from.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScoreReadLabels {
    /// `cache` (the host's latest-score cache) or `store`.
    pub from: String,
}

/// What a plugin deploy, rollback, unload or quarantine came to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeployLabels {
    /// `deployed`, `unchanged`, `refused`, `rolled-back`, `unloaded` or
    /// `quarantined`.
    pub outcome: String,
}

/// The host's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    events: Counter,
    pipeline_runs: Counter,
    invocations: Family<PluginLabels, Counter>,
    faults: Family<PluginLabels, Counter>,
    plugin_errors: Family<PluginLabels, Counter>,
    fuel: Family<PluginLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    deploys: Family<DeployLabels, Counter>,
    score_reads: Family<ScoreReadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let events = Counter::default();
        registry.register("events_ingested", "Events committed", events.clone());
        let pipeline_runs = Counter::default();
        registry.register(
            "pipeline_runs",
            "Events evaluated by the pipeline",
            pipeline_runs.clone(),
        );
        let invocations = Family::<PluginLabels, Counter>::default();
        registry.register("plugin_invocations", "Plugin calls", invocations.clone());
        let faults = Family::<PluginLabels, Counter>::default();
        registry.register(
            "plugin_traps",
            "Plugin calls that trapped or hit a limit (fuel, deadline, memory, output)",
            faults.clone(),
        );
        let plugin_errors = Family::<PluginLabels, Counter>::default();
        registry.register(
            "plugin_errors",
            "Plugin calls that returned a domain error",
            plugin_errors.clone(),
        );
        let fuel = Family::<PluginLabels, Counter>::default();
        registry.register("plugin_fuel", "Fuel burned by plugin calls", fuel.clone());
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "intent_deliveries",
            "Intents carried out or refused by their connector",
            deliveries.clone(),
        );
        let deploys = Family::<DeployLabels, Counter>::default();
        registry.register(
            "plugin_lifecycle",
            "Plugin deploys, refusals, rollbacks, unloads and quarantines on this host",
            deploys.clone(),
        );
        let score_reads = Family::<ScoreReadLabels, Counter>::default();
        registry.register(
            "health_score_reads",
            "Health-score reads, by where they were answered from (cache or store)",
            score_reads.clone(),
        );
        Self {
            registry,
            requests,
            events,
            pipeline_runs,
            invocations,
            faults,
            plugin_errors,
            fuel,
            deliveries,
            deploys,
            score_reads,
        }
    }

    /// Counts an answered request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// Counts committed events.
    pub fn events_ingested(&self, count: u64) {
        self.events.inc_by(count);
    }

    /// Counts one pipeline run and its plugin calls.
    pub fn pipeline_run(&self, invocations: &[InvocationRecord]) {
        self.pipeline_runs.inc();
        for record in invocations {
            let labels = PluginLabels {
                plugin: record.plugin.name.to_string(),
                version: record.plugin.version.to_string(),
            };
            self.invocations.get_or_create(&labels).inc();
            self.fuel.get_or_create(&labels).inc_by(record.fuel_used);
            if record.outcome.is_fault() {
                self.faults.get_or_create(&labels).inc();
            } else if !record.outcome.is_ok() {
                self.plugin_errors.get_or_create(&labels).inc();
            }
        }
    }

    /// Counts a delivery result.
    pub fn delivery(&self, state: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                state: state.to_string(),
            })
            .inc();
    }

    /// Counts a plugin lifecycle step.
    pub fn deploy(&self, outcome: &str) {
        self.deploys
            .get_or_create(&DeployLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a health-score read answered from `from` (`cache` or
    /// `store`).
    pub fn score_read(&self, from: &str) {
        self.score_reads
            .get_or_create(&ScoreReadLabels {
                from: from.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_requests_appear_in_the_exposition_with_their_labels() {
        let metrics = Metrics::new();
        metrics.request("GET", "/healthz", 200);
        metrics.request("GET", "/healthz", 200);
        metrics.events_ingested(3);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"vigil_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("vigil_events_ingested_total 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
