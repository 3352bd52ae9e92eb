//! The four implementations of the rule set behind one interface, each
//! driven over the same event stream.
//!
//! Every engine does the same host work per event: parse the payload,
//! record the event into the account's history (`AccountState::record_event`)
//! and record the health score after it. vigil's pipeline does that itself
//! and passes each plugin the history windows it declares, computed for
//! every item of a batch before the call; for native Rust, rhai and
//! zen-engine the host gathers the same history windows
//! ([`Facts::gather`]) and passes them in.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use vigil_host::demo::GeneratedAccount;
use vigil_host::history::PayloadNumbers;
use vigil_host::names::{industry_name, severity_name, tier_name};
use vigil_host::pipeline::{AccountState, Disposition, Evaluation, Pipeline, PluginSet};
use vigil_host::runtime::{
    InstanceMode, Interruption, Limits, Outcome as CallOutcome, Plugin, Runtime,
};

use crate::rules::{Facts, Outcome, SignalOutcome, native};

/// A bench component's bytes, embedded from where `xtask/build.rs` built it.
macro_rules! embedded {
    ($file:literal) => {
        include_bytes!(concat!(env!("VIGIL_BENCH_COMPONENTS"), "/", $file, ".wasm"))
    };
}

/// The five bench components of the rule set, built by `xtask/build.rs`,
/// in pipeline order.
pub const COMPONENTS: &[&str] = &[
    "bench-health",
    "bench-health-signals",
    "bench-usage-signals",
    "bench-ticket-signals",
    "bench-tier",
];

/// The same rules with the three triggers in one plugin (`bench-signals`):
/// two plugin items fewer an event (the three triggers' calls become one),
/// to measure what an item costs.
pub const ONE_TRIGGER_COMPONENTS: &[&str] = &["bench-health", "bench-signals", "bench-tier"];

/// The same rules as one contract 0.7 ruleset (`bench-ruleset`): one plugin
/// item an event, where the five plugins take five and a check item for
/// each signal.
pub const RULESET_COMPONENTS: &[&str] = &["bench-ruleset"];

/// The environment variable naming a folder of bench components to run
/// instead of the ones this binary was built with (`bench_health.wasm`,
/// …): to time a change to the guest side (the SDK, the rules) with the
/// same host binary, alternating the two folders.
pub const COMPONENTS_VARIABLE: &str = "VIGIL_BENCH_COMPONENTS";

/// Every bench component this binary was built with, embedded, so that a
/// binary always runs its own: a later build of another checkout writes
/// the same folder (`xtask/build.rs`), and a binary that read it at run
/// time would run that checkout's components without saying so.
const BUILT_COMPONENTS: &[(&str, &[u8])] = &[
    ("bench-health", embedded!("bench_health")),
    ("bench-health-signals", embedded!("bench_health_signals")),
    ("bench-usage-signals", embedded!("bench_usage_signals")),
    ("bench-ticket-signals", embedded!("bench_ticket_signals")),
    ("bench-tier", embedded!("bench_tier")),
    ("bench-signals", embedded!("bench_signals")),
    ("bench-ruleset", embedded!("bench_ruleset")),
];

/// The bytes of a bench component: from the folder `VIGIL_BENCH_COMPONENTS`
/// names when it is set, else the one this binary was built with.
pub fn component(name: &str) -> anyhow::Result<Vec<u8>> {
    component_from(std::env::var_os(COMPONENTS_VARIABLE).as_deref(), name)
}

/// [`component`] with the variable's value given.
fn component_from(folder: Option<&std::ffi::OsStr>, name: &str) -> anyhow::Result<Vec<u8>> {
    match folder {
        Some(folder) => {
            let path =
                std::path::Path::new(folder).join(format!("{}.wasm", name.replace('-', "_")));
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        }
        None => BUILT_COMPONENTS
            .iter()
            .find(|(built, _)| *built == name)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| anyhow!("no bench component named {name}")),
    }
}

/// An implementation of the rule set that runs an account's events.
pub trait Contender {
    /// Its name in the tables.
    fn name(&self) -> &str;

    /// Runs every event of `account` in order from a fresh account state;
    /// pushes one outcome per event into `outcomes` when given (the check),
    /// and only evaluates otherwise (the measurement).
    fn run_account(
        &mut self,
        account: &GeneratedAccount,
        outcomes: Option<&mut Vec<Outcome>>,
    ) -> anyhow::Result<()>;

    /// Runs every event of every account of `portfolio`, each account's in
    /// order; pushes the outcomes account by account, each account's in
    /// event order. By default one account after the other; an engine that
    /// evaluates many accounts' events together overrides it.
    fn run_portfolio(
        &mut self,
        portfolio: &[GeneratedAccount],
        mut outcomes: Option<&mut Vec<Outcome>>,
    ) -> anyhow::Result<()> {
        for account in portfolio {
            self.run_account(account, outcomes.as_deref_mut())?;
        }
        Ok(())
    }
}

/// A rule engine fed with [`Facts`].
pub trait FactsEngine {
    /// What one evaluation returns.
    type Output;
    /// Evaluates the rule set.
    fn evaluate(&mut self, facts: &Facts) -> anyhow::Result<Self::Output>;
    /// The health score in an output, recorded into the history.
    fn score(output: &Self::Output) -> anyhow::Result<f64>;
    /// An output as an [`Outcome`].
    fn outcome(output: &Self::Output) -> anyhow::Result<Outcome>;
}

/// The host side shared by native Rust, rhai and zen-engine.
#[derive(Debug)]
pub struct FactsHost<E> {
    name: &'static str,
    engine: E,
}

impl<E: FactsEngine> FactsHost<E> {
    /// Hosts `engine` under `name`.
    pub fn new(name: &'static str, engine: E) -> Self {
        Self { name, engine }
    }
}

impl<E: FactsEngine> Contender for FactsHost<E> {
    fn name(&self) -> &str {
        self.name
    }

    fn run_account(
        &mut self,
        account: &GeneratedAccount,
        mut outcomes: Option<&mut Vec<Outcome>>,
    ) -> anyhow::Result<()> {
        let mut state = AccountState::new(account.account.clone());
        for event in &account.events {
            let payload = PayloadNumbers::parse(&event.payload)
                .with_context(|| format!("payload of {}", event.id))?;
            let now = event.occurred_at;
            state.record_event(&event.kind, now, &payload);
            let facts = Facts::gather(&state.account, &state.history, now);
            let output = self.engine.evaluate(&facts)?;
            state.history.record("health", now, E::score(&output)?);
            match outcomes.as_deref_mut() {
                Some(outcomes) => outcomes.push(E::outcome(&output)?),
                None => {
                    black_box(&output);
                }
            }
        }
        Ok(())
    }
}

/// The rule set in native Rust.
#[derive(Debug, Default)]
pub struct Native;

impl FactsEngine for Native {
    type Output = native::Result;

    fn evaluate(&mut self, facts: &Facts) -> anyhow::Result<native::Result> {
        Ok(native::evaluate(facts))
    }

    fn score(output: &native::Result) -> anyhow::Result<f64> {
        Ok(output.score)
    }

    fn outcome(output: &native::Result) -> anyhow::Result<Outcome> {
        Ok(output.outcome())
    }
}

/// The rule set as a rhai script, compiled once.
#[derive(Debug)]
pub struct Rhai {
    engine: rhai::Engine,
    ast: rhai::AST,
    scope: rhai::Scope<'static>,
}

/// The rhai script.
pub const RHAI_SCRIPT: &str = include_str!("rules.rhai");

impl Rhai {
    /// Compiles the script with full optimisation.
    pub fn new() -> anyhow::Result<Self> {
        let mut engine = rhai::Engine::new();
        engine.set_optimization_level(rhai::OptimizationLevel::Full);
        // rhai's default nesting limits are halved in debug builds, where
        // the health score's expression exceeds them; the release limits
        // apply to both.
        engine.set_max_expr_depths(64, 32);
        let ast = engine
            .compile(RHAI_SCRIPT)
            .map_err(|e| anyhow!("compiling rules.rhai: {e}"))?;
        Ok(Self {
            engine,
            ast,
            scope: rhai::Scope::new(),
        })
    }

    /// The facts as the object map `evaluate` takes.
    fn facts(f: &Facts) -> rhai::Map {
        let mut map = rhai::Map::new();
        let mut put = |key: &str, value: rhai::Dynamic| {
            map.insert(key.into(), value);
        };
        put("tier", tier_name(f.tier).into());
        put("industry", industry_name(f.industry).into());
        put("seats", f64::from(f.seats).into());
        put("active", f64::from(f.active).into());
        put("has_renewal", f.renewal_in_ms.is_some().into());
        put(
            "renewal_in_ms",
            (f.renewal_in_ms.unwrap_or(0) as f64).into(),
        );
        put("logins_recent", f.logins_recent.into());
        put("logins_earlier", f.logins_earlier.into());
        put(
            "logins_earlier_count",
            f64::from(f.logins_earlier_count).into(),
        );
        put("tickets_30", f64::from(f.tickets_30).into());
        put("tickets_7", f64::from(f.tickets_7).into());
        put("tickets_before", f64::from(f.tickets_before).into());
        put("nps_count", f64::from(f.nps.0).into());
        put("nps_sum", f.nps.1.into());
        put("sentiment_count", f64::from(f.sentiment.0).into());
        put("sentiment_sum", f.sentiment.1.into());
        put("overdue_count", f64::from(f.overdue.0).into());
        put("overdue_last", f.overdue.1.into());
        put("baseline_count", f64::from(f.baseline.0).into());
        put("baseline_sum", f.baseline.1.into());
        map
    }
}

fn rhai_field<'a>(map: &'a rhai::Map, key: &str) -> anyhow::Result<&'a rhai::Dynamic> {
    map.get(key)
        .ok_or_else(|| anyhow!("rhai result has no `{key}`"))
}

fn rhai_string(map: &rhai::Map, key: &str) -> anyhow::Result<String> {
    rhai_field(map, key)?
        .clone()
        .into_string()
        .map_err(|t| anyhow!("rhai `{key}` is a {t}, not a string"))
}

impl FactsEngine for Rhai {
    type Output = rhai::Map;

    fn evaluate(&mut self, facts: &Facts) -> anyhow::Result<rhai::Map> {
        self.engine
            .call_fn::<rhai::Map>(
                &mut self.scope,
                &self.ast,
                "evaluate",
                (Self::facts(facts),),
            )
            .map_err(|e| anyhow!("rhai evaluate: {e}"))
    }

    fn score(output: &rhai::Map) -> anyhow::Result<f64> {
        rhai_field(output, "score")?
            .as_float()
            .map_err(|t| anyhow!("rhai score is a {t}"))
    }

    fn outcome(output: &rhai::Map) -> anyhow::Result<Outcome> {
        let tags: Vec<String> = rhai_field(output, "tags")?
            .clone()
            .into_typed_array::<rhai::ImmutableString>()
            .map_err(|t| anyhow!("rhai tags: {t}"))?
            .into_iter()
            .map(|t| t.to_string())
            .collect();
        let signals = rhai_field(output, "signals")?
            .clone()
            .into_array()
            .map_err(|t| anyhow!("rhai signals is a {t}"))?
            .into_iter()
            .map(|signal| {
                let signal = signal
                    .try_cast::<rhai::Map>()
                    .ok_or_else(|| anyhow!("rhai signal is not a map"))?;
                let applies = rhai_field(&signal, "applies")?
                    .as_bool()
                    .map_err(|t| anyhow!("rhai applies is a {t}"))?;
                Ok(SignalOutcome {
                    name: rhai_string(&signal, "name")?,
                    severity: rhai_string(&signal, "severity")?,
                    applies,
                    tags: tags.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Outcome {
            score: Self::score(output)?,
            band: rhai_string(output, "band")?,
            signals,
        }
        .normalized())
    }
}

/// The rule set as a zen-engine decision graph, loaded and compiled once.
pub struct Zen {
    decision: zen_engine::Decision,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Zen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zen").finish_non_exhaustive()
    }
}

/// The zen-engine decision graph (JDM).
pub const ZEN_GRAPH: &str = include_str!("rules.json");

impl Zen {
    /// Loads the graph and precompiles its expressions and tables.
    pub fn new() -> anyhow::Result<Self> {
        let content: zen_engine::model::DecisionContent =
            serde_json::from_str(ZEN_GRAPH).context("parsing rules.json")?;
        let engine = zen_engine::DecisionEngine::default();
        let mut decision = engine
            .create_decision(Arc::new(content))
            .map_err(|e| anyhow!("rules.json: {e:?}"))?;
        decision
            .validate()
            .map_err(|e| anyhow!("rules.json is not a valid graph: {e:?}"))?;
        decision.compile();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("starting the runtime zen-engine evaluates on")?;
        Ok(Self { decision, runtime })
    }

    /// The facts as the graph's input.
    fn facts(f: &Facts) -> serde_json::Value {
        serde_json::json!({
            "tier": tier_name(f.tier),
            "industry": industry_name(f.industry),
            "seats": f.seats,
            "active": f.active,
            "renewalKnown": f.renewal_in_ms.is_some(),
            "renewalInMs": f.renewal_in_ms.unwrap_or(0),
            "loginsRecent": f.logins_recent,
            "loginsEarlier": f.logins_earlier,
            "loginsEarlierCount": f.logins_earlier_count,
            "tickets30": f.tickets_30,
            "tickets7": f.tickets_7,
            "ticketsBefore": f.tickets_before,
            "npsCount": f.nps.0,
            "npsSum": f.nps.1,
            "sentimentCount": f.sentiment.0,
            "sentimentSum": f.sentiment.1,
            "overdueCount": f.overdue.0,
            "overdueLast": f.overdue.1,
            "baselineCount": f.baseline.0,
            "baselineSum": f.baseline.1,
        })
    }
}

fn json_str(value: &serde_json::Value, key: &str) -> anyhow::Result<String> {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("zen result has no string `{key}`"))
}

impl FactsEngine for Zen {
    type Output = zen_engine::Variable;

    fn evaluate(&mut self, facts: &Facts) -> anyhow::Result<zen_engine::Variable> {
        let input = Self::facts(facts).into();
        let response = self
            .runtime
            .block_on(self.decision.evaluate(input))
            .map_err(|e| anyhow!("zen evaluate: {e:?}"))?;
        Ok(response.result)
    }

    fn score(output: &zen_engine::Variable) -> anyhow::Result<f64> {
        output
            .dot("score")
            .and_then(|score| score.to_value().as_f64())
            .ok_or_else(|| anyhow!("zen result has no numeric score"))
    }

    fn outcome(output: &zen_engine::Variable) -> anyhow::Result<Outcome> {
        let value = output.to_value();
        let tags: Vec<String> = value
            .get("tags")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| anyhow!("zen result has no tags"))?
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("zen tag {t}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let signals = value
            .get("signals")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| anyhow!("zen result has no signals"))?
            .iter()
            .map(|signal| {
                Ok(SignalOutcome {
                    name: json_str(signal, "name")?,
                    severity: json_str(signal, "severity")?,
                    applies: signal
                        .get("applies")
                        .and_then(serde_json::Value::as_bool)
                        .ok_or_else(|| anyhow!("zen signal without applies"))?,
                    tags: tags.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Outcome {
            score: Self::score(output)?,
            band: json_str(&value, "band")?,
            signals,
        }
        .normalized())
    }
}

/// Loads the bench components into a runtime with `interruption`.
pub fn bench_plugins(
    interruption: Interruption,
    mode: InstanceMode,
) -> anyhow::Result<(Runtime, Vec<Arc<Plugin>>)> {
    bench_plugins_of(COMPONENTS, interruption, mode)
}

/// The bench components `names`, loaded in that order.
pub fn bench_plugins_of(
    names: &[&str],
    interruption: Interruption,
    mode: InstanceMode,
) -> anyhow::Result<(Runtime, Vec<Arc<Plugin>>)> {
    let runtime = Runtime::new(Limits {
        interruption,
        ..Limits::default()
    })?;
    let plugins = names
        .iter()
        .map(|name| {
            let bytes = component(name)?;
            let plugin = runtime
                .load(&bytes, BTreeMap::new(), mode)
                .map_err(|e| anyhow!("loading {name}: {e}"))?;
            Ok(Arc::new(plugin))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((runtime, plugins))
}

/// The rule set as vigil plugins, run through the host's pipeline.
#[derive(Debug)]
pub struct Vigil {
    name: String,
    pipeline: Pipeline,
    /// Events per `Pipeline::process_batch` call: 1 runs the accounts one
    /// after the other through `Pipeline::process`; more runs the
    /// portfolio in waves (every account's next event), this many events
    /// (accounts) per batch.
    batch: usize,
    /// Events, plugin calls and fuel seen by checked runs (not by timed
    /// ones, which count nothing).
    tally: (u64, u64, u64),
    /// Kept alive for the plugins' engine and epoch thread.
    _runtime: Runtime,
}

impl Vigil {
    /// The bench components in a pipeline.
    pub fn new(
        name: impl Into<String>,
        interruption: Interruption,
        mode: InstanceMode,
    ) -> anyhow::Result<Self> {
        let (runtime, plugins) = bench_plugins(interruption, mode)?;
        Ok(Self::running(name.into(), runtime, plugins))
    }

    /// A pipeline over `plugins`, one event per call.
    fn running(name: String, runtime: Runtime, plugins: Vec<Arc<Plugin>>) -> Self {
        Self {
            name,
            pipeline: Pipeline::new(PluginSet::new(plugins)),
            batch: 1,
            tally: (0, 0, 0),
            _runtime: runtime,
        }
    }

    /// The rule set with its three triggers in one plugin
    /// ([`ONE_TRIGGER_COMPONENTS`]): the same decisions from two plugin
    /// items fewer an event.
    pub fn one_trigger(
        name: impl Into<String>,
        interruption: Interruption,
        mode: InstanceMode,
    ) -> anyhow::Result<Self> {
        let (runtime, plugins) = bench_plugins_of(ONE_TRIGGER_COMPONENTS, interruption, mode)?;
        Ok(Self::running(name.into(), runtime, plugins))
    }

    /// The rule set as one ruleset ([`RULESET_COMPONENTS`]): the same
    /// decisions from one plugin item an event.
    pub fn ruleset(
        name: impl Into<String>,
        interruption: Interruption,
        mode: InstanceMode,
    ) -> anyhow::Result<Self> {
        let (runtime, plugins) = bench_plugins_of(RULESET_COMPONENTS, interruption, mode)?;
        Ok(Self::running(name.into(), runtime, plugins))
    }

    /// The pipeline with only the first `count` bench components (in
    /// pipeline order: scorer, the three triggers, the condition), so that
    /// a profile can take the pipeline apart stage by stage; with 0 it runs
    /// no plugin at all and measures the pipeline's own work per event.
    /// Its outcomes are not the rule set's.
    pub fn partial(count: usize) -> anyhow::Result<Self> {
        let (runtime, mut plugins) = bench_plugins(Interruption::FuelAndEpoch, InstanceMode::Warm)?;
        plugins.truncate(count);
        Ok(Self::running(
            format!("vigil, first {count} plugins"),
            runtime,
            plugins,
        ))
    }

    /// The same, evaluating `batch` accounts' events per pipeline call.
    pub fn batched(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Counts an evaluation into the tally and returns its outcome.
    fn count(&mut self, evaluation: &Evaluation) -> anyhow::Result<Outcome> {
        self.tally.0 += 1;
        self.tally.1 += evaluation.invocations.len() as u64;
        self.tally.2 += evaluation
            .invocations
            .iter()
            .map(|r| r.fuel_used)
            .sum::<u64>();
        Self::outcome(evaluation)
    }

    /// Events, plugin calls and fuel burned over the checked runs so far.
    pub fn tally(&self) -> (u64, u64, u64) {
        self.tally
    }

    /// An evaluation as an [`Outcome`]; fails on any call that did not
    /// succeed.
    pub fn outcome(evaluation: &Evaluation) -> anyhow::Result<Outcome> {
        if let Some(failed) = evaluation
            .invocations
            .iter()
            .find(|r| r.outcome != CallOutcome::Ok)
        {
            bail!(
                "{} {} on {}: {}",
                failed.plugin.name,
                failed.call,
                evaluation.event_id,
                failed.outcome
            );
        }
        let health = evaluation
            .scores
            .iter()
            .find(|s| s.card.name == "health")
            .ok_or_else(|| anyhow!("no health score for {}", evaluation.event_id))?;
        let signals = evaluation
            .signals
            .iter()
            .map(|record| {
                let (applies, tags) = match &record.disposition {
                    Disposition::Acted { policy_tags } => (
                        true,
                        policy_tags.iter().map(|tag| tag.to_string()).collect(),
                    ),
                    Disposition::NotApplicable { .. } => (false, Vec::new()),
                    other => bail!("signal {} was {other:?}", record.signal.name),
                };
                Ok(SignalOutcome {
                    name: record.signal.name.to_string(),
                    severity: severity_name(record.signal.severity).to_string(),
                    applies,
                    tags,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Outcome {
            score: health.card.value,
            band: health.card.band.to_string(),
            signals,
        }
        .normalized())
    }
}

impl Contender for Vigil {
    fn name(&self) -> &str {
        &self.name
    }

    fn run_account(
        &mut self,
        account: &GeneratedAccount,
        mut outcomes: Option<&mut Vec<Outcome>>,
    ) -> anyhow::Result<()> {
        let mut state = AccountState::new(account.account.clone());
        for event in &account.events {
            let evaluation = self.pipeline.process(&mut state, event)?;
            match outcomes.as_deref_mut() {
                Some(outcomes) => outcomes.push(self.count(&evaluation)?),
                None => {
                    black_box(&evaluation);
                }
            }
        }
        Ok(())
    }

    fn run_portfolio(
        &mut self,
        portfolio: &[GeneratedAccount],
        mut outcomes: Option<&mut Vec<Outcome>>,
    ) -> anyhow::Result<()> {
        if self.batch <= 1 {
            for account in portfolio {
                self.run_account(account, outcomes.as_deref_mut())?;
            }
            return Ok(());
        }
        let mut states: Vec<AccountState> = portfolio
            .iter()
            .map(|account| AccountState::new(account.account.clone()))
            .collect();
        let mut per_account: Vec<Vec<Outcome>> = portfolio.iter().map(|_| Vec::new()).collect();
        let waves = portfolio.iter().map(|a| a.events.len()).max().unwrap_or(0);
        for wave in 0..waves {
            // Every account's `wave`-th event, `batch` accounts at a time.
            let mut due: Vec<(
                usize,
                &mut AccountState,
                &vigil_host::runtime::bindings::types::Event,
            )> = states
                .iter_mut()
                .zip(portfolio)
                .enumerate()
                .filter_map(|(at, (state, account))| {
                    account.events.get(wave).map(|event| (at, state, event))
                })
                .collect();
            for chunk in due.chunks_mut(self.batch) {
                let mut batch: Vec<(
                    &mut AccountState,
                    &vigil_host::runtime::bindings::types::Event,
                )> = chunk
                    .iter_mut()
                    .map(|(_, state, event)| (&mut **state, *event))
                    .collect();
                let evaluations = self.pipeline.process_batch(&mut batch);
                for ((at, _, _), evaluation) in chunk.iter().zip(evaluations) {
                    let evaluation = evaluation?;
                    match outcomes.is_some() {
                        true => {
                            let outcome = self.count(&evaluation)?;
                            if let Some(list) = per_account.get_mut(*at) {
                                list.push(outcome);
                            }
                        }
                        false => {
                            black_box(&evaluation);
                        }
                    }
                }
            }
        }
        if let Some(outcomes) = outcomes {
            outcomes.extend(per_account.into_iter().flatten());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{COMPONENTS, ONE_TRIGGER_COMPONENTS, RULESET_COMPONENTS, component_from};

    /// The first bytes of every Wasm binary.
    const WASM_MAGIC: &[u8] = b"\0asm";

    #[test]
    fn every_bench_component_the_engines_name_is_embedded_in_the_binary() {
        for name in COMPONENTS
            .iter()
            .chain(ONE_TRIGGER_COMPONENTS)
            .chain(RULESET_COMPONENTS)
        {
            let bytes = component_from(None, name).unwrap();
            assert!(bytes.starts_with(WASM_MAGIC), "{name} is not Wasm");
        }
    }

    #[test]
    fn a_name_that_is_no_bench_component_is_an_error() {
        let error = component_from(None, "bench-nothing").unwrap_err();
        assert!(error.to_string().contains("bench-nothing"), "{error}");
    }

    #[test]
    fn a_folder_given_in_the_variable_is_read_instead_of_the_embedded_components() {
        let folder = std::env::temp_dir().join(format!(
            "vigil-bench-components-test-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("bench_ruleset.wasm"), b"another build").unwrap();

        let read = component_from(Some(folder.as_os_str()), "bench-ruleset");
        let missing = component_from(Some(folder.as_os_str()), "bench-tier");
        std::fs::remove_dir_all(&folder).unwrap();

        assert_eq!(read.unwrap(), b"another build");
        let error = format!("{:#}", missing.unwrap_err());
        assert!(error.contains("bench_tier.wasm"), "{error}");
    }
}
