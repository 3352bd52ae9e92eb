//! `cargo xtask bench`: the four engines side by side on one portfolio, in
//! one process, after checking that they agree.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use vigil_host::demo::{GeneratedAccount, generate_portfolio};
use vigil_host::history::PayloadNumbers;
use vigil_host::runtime::{InstanceMode, Interruption};

use crate::engines::{
    COMPONENTS, Contender, FactsHost, Native, RULESET_COMPONENTS, Rhai, Vigil, Zen, bench_plugins,
    bench_plugins_of,
};
use crate::rules::Outcome;

/// The design's targets (design.md, "Performance targets").
pub mod targets {
    /// Pipeline events per second on one core, warm instances.
    pub const PIPELINE_EVENTS_PER_SEC: f64 = 400_000.0;
    /// vigil's throughput over rhai's on the same rules.
    pub const OVER_RHAI: f64 = 3.0;
    /// vigil's throughput over zen-engine's on the same rules.
    pub const OVER_ZEN: f64 = 15.0;
    /// Instantiation from a pre-instantiated component, p50, in µs.
    pub const INSTANTIATE_P50_US: f64 = 10.0;
}

/// What `cargo xtask bench` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Accounts in the generated portfolio.
    pub accounts: usize,
    /// The portfolio's seed.
    pub seed: u64,
    /// Timed rounds per engine; the median is reported.
    pub rounds: usize,
    /// Instantiations timed per component.
    pub samples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            accounts: 1000,
            seed: 42,
            rounds: 5,
            samples: 5000,
        }
    }
}

/// Events (one per account) per `Pipeline::process_batch` call in vigil's
/// batched runs: what the pipeline evaluates together, as the service's
/// evaluator calls it (each call's evaluations consumed before the next,
/// as the service writes them out).
pub const BATCH: usize = vigil_host::pipeline::EVALUATION_CHUNK;

/// Where vigil as five plugins stands among [`contenders`].
pub const VIGIL_PLUGINS: usize = 1;

/// Where vigil as one ruleset stands among [`contenders`].
pub const VIGIL_RULESET: usize = 2;

/// The engines of the comparison: native first, then vigil twice (warm
/// instances, fuel and epoch: the defaults; `BATCH` accounts' events per
/// pipeline call) — the rules as five plugins, a scorer, three triggers and
/// a condition (contract 0.6's way), and as one ruleset (contract 0.7) —
/// then rhai and zen-engine.
pub fn contenders() -> anyhow::Result<Vec<Box<dyn Contender>>> {
    Ok(vec![
        Box::new(FactsHost::new("native Rust", Native)),
        Box::new(
            Vigil::new(
                "vigil, 5 plugins",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
        Box::new(
            Vigil::ruleset(
                "vigil, 1 ruleset",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
        Box::new(FactsHost::new("rhai", Rhai::new()?)),
        Box::new(FactsHost::new("zen-engine", Zen::new()?)),
    ])
}

/// Every outcome of `contender` over `portfolio`, in event order.
pub fn outcomes(
    contender: &mut dyn Contender,
    portfolio: &[GeneratedAccount],
) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    contender.run_portfolio(portfolio, Some(&mut outcomes))?;
    Ok(outcomes)
}

/// Checks that every contender gives the first one's outcome on every event
/// of `portfolio`; the error names the first event where one differs.
/// Returns the number of events checked.
pub fn check_agreement(
    contenders: &mut [Box<dyn Contender>],
    portfolio: &[GeneratedAccount],
) -> anyhow::Result<usize> {
    let Some((reference, others)) = contenders.split_first_mut() else {
        bail!("no engine to check");
    };
    let expected = outcomes(reference.as_mut(), portfolio)?;
    let events: Vec<&str> = portfolio
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.id.as_str()))
        .collect();
    for other in others {
        let got = outcomes(other.as_mut(), portfolio)?;
        if got.len() != expected.len() {
            bail!(
                "{} gave {} outcomes for {} events",
                other.name(),
                got.len(),
                expected.len()
            );
        }
        for ((want, have), event) in expected.iter().zip(&got).zip(&events) {
            if let Some(why) = want.disagreement(have) {
                bail!(
                    "{} and {} disagree on event {event}: {why}\n  {}: {want}\n  {}: {have}",
                    reference.name(),
                    other.name(),
                    reference.name(),
                    other.name()
                );
            }
        }
    }
    Ok(expected.len())
}

/// Wall-clock time of one run over the portfolio.
pub fn time_run(
    contender: &mut dyn Contender,
    portfolio: &[GeneratedAccount],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    contender.run_portfolio(portfolio, None)?;
    Ok(started.elapsed())
}

/// The median of some durations.
pub fn median(durations: &mut [Duration]) -> Duration {
    durations.sort();
    durations
        .get(durations.len() / 2)
        .copied()
        .unwrap_or_default()
}

/// A measured engine: the median round.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The engine.
    pub name: String,
    /// Events per round.
    pub events: usize,
    /// The median round's time.
    pub median: Duration,
    /// Every round's time, in the order the rounds ran.
    pub rounds: Vec<Duration>,
}

impl Measured {
    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.median.as_secs_f64().max(1e-12)
    }

    /// Nanoseconds per event.
    pub fn ns_per_event(&self) -> f64 {
        self.median.as_secs_f64() * 1e9 / self.events.max(1) as f64
    }
}

/// Times every contender for `rounds` rounds, interleaved (round by round,
/// every engine in turn) so that drift in the machine hits them alike.
pub fn measure(
    contenders: &mut [Box<dyn Contender>],
    portfolio: &[GeneratedAccount],
    rounds: usize,
) -> anyhow::Result<Vec<Measured>> {
    let events = portfolio.iter().map(|a| a.events.len()).sum();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds.max(1) {
        for (contender, times) in contenders.iter_mut().zip(&mut times) {
            times.push(time_run(contender.as_mut(), portfolio)?);
        }
    }
    Ok(contenders
        .iter()
        .zip(&mut times)
        .map(|(contender, times)| Measured {
            name: contender.name().to_string(),
            events,
            rounds: times.clone(),
            median: median(times),
        })
        .collect())
}

/// How many times faster `engine` ran than `other`, round by round: a
/// round runs every engine back to back, so a machine that slows down
/// between rounds slows both sides of each ratio alike.
pub fn speed_by_round(engine: &Measured, other: &Measured) -> Vec<f64> {
    engine
        .rounds
        .iter()
        .zip(&other.rounds)
        .map(|(engine, other)| other.as_secs_f64() / engine.as_secs_f64().max(1e-12))
        .collect()
}

/// How much more time (in percent, negative for less) `variant` took
/// than `base`, round by round: the median, smallest and largest of the
/// rounds' changes (zeros when there are no rounds).
pub fn time_change_by_round(variant: &Measured, base: &Measured) -> (f64, f64, f64) {
    let changes: Vec<f64> = speed_by_round(base, variant)
        .into_iter()
        .map(|ratio| (ratio - 1.0) * 100.0)
        .collect();
    ratio_spread(&changes)
}

/// The median, smallest and largest of some ratios (zeros when empty).
pub fn ratio_spread(ratios: &[f64]) -> (f64, f64, f64) {
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let low = sorted.first().copied().unwrap_or(0.0);
    let high = sorted.last().copied().unwrap_or(0.0);
    (middle, low, high)
}

/// Runs one engine alone over a portfolio `rounds` times (after one
/// untimed run), for a profiler; returns a line with the median round's
/// time per event.
pub fn profile(engine: &str, accounts: usize, seed: u64, rounds: usize) -> anyhow::Result<String> {
    let contender: Box<dyn Contender> = match engine {
        "native" => Box::new(FactsHost::new("native Rust", Native)),
        "vigil" => Box::new(
            Vigil::new("vigil", Interruption::FuelAndEpoch, InstanceMode::Warm)?.batched(BATCH),
        ),
        "vigil-single" => Box::new(Vigil::new(
            "vigil, one event per call",
            Interruption::FuelAndEpoch,
            InstanceMode::Warm,
        )?),
        "vigil-fresh" => Box::new(Vigil::new(
            "vigil fresh",
            Interruption::FuelAndEpoch,
            InstanceMode::Fresh,
        )?),
        "vigil-one-trigger" => Box::new(
            Vigil::one_trigger(
                "vigil, 3 triggers as 1 plugin",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
        "vigil-ruleset" => Box::new(
            Vigil::ruleset(
                "vigil, rules as 1 ruleset",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
        "rhai" => Box::new(FactsHost::new("rhai", Rhai::new()?)),
        "zen" => Box::new(FactsHost::new("zen-engine", Zen::new()?)),
        stage if stage.starts_with("vigil-first-") => {
            let count = stage
                .trim_start_matches("vigil-first-")
                .parse()
                .map_err(|_| anyhow!("`{stage}`: expected vigil-first-N"))?;
            Box::new(Vigil::partial(count)?.batched(BATCH))
        }
        "stages" => {
            // The pipeline with 0, 1, … 5 of the bench plugins: what each
            // stage adds per event.
            let mut out = String::new();
            for count in 0..=COMPONENTS.len() {
                out.push_str(&profile_one(
                    Box::new(Vigil::partial(count)?.batched(BATCH)),
                    accounts,
                    seed,
                    rounds,
                )?);
            }
            return Ok(out);
        }
        "instantiate" => {
            let mut out = String::new();
            for (name, p50, p99) in instantiation(accounts.max(1) * 100)? {
                let _ = writeln!(out, "{name:<28} p50 {p50:>8.2} µs  p99 {p99:>8.2} µs");
            }
            return Ok(out);
        }
        "calls" => {
            let mut out = String::new();
            let _ = writeln!(out, "{:<44} {:>10} {:>10}", "warm call", "ns", "fuel");
            for cost in call_costs(accounts.max(1) * 100)? {
                let _ = writeln!(out, "{:<44} {:>10.0} {:>10}", cost.name, cost.ns, cost.fuel);
            }
            return Ok(out);
        }
        other => bail!(
            "unknown engine `{other}`: native, vigil, vigil-single, vigil-fresh, vigil-one-trigger, vigil-ruleset, vigil-first-N, rhai, zen, stages, calls or instantiate"
        ),
    };
    profile_one(contender, accounts, seed, rounds)
}

fn profile_one(
    mut contender: Box<dyn Contender>,
    accounts: usize,
    seed: u64,
    rounds: usize,
) -> anyhow::Result<String> {
    let portfolio = generate_portfolio(accounts, seed);
    let events: usize = portfolio.iter().map(|a| a.events.len()).sum();
    time_run(contender.as_mut(), &portfolio)?;
    let mut times = Vec::new();
    for _ in 0..rounds.max(1) {
        times.push(time_run(contender.as_mut(), &portfolio)?);
    }
    let per_event = median(&mut times).as_secs_f64() * 1e9 / events.max(1) as f64;
    Ok(format!(
        "{}: {events} events x {} rounds, median {per_event:.0} ns/event\n",
        contender.name(),
        rounds.max(1)
    ))
}

/// One warm call into one plugin, alone: its median time and its fuel.
#[derive(Debug, Clone)]
pub struct CallCost {
    /// The plugin, and the context it was called with.
    pub name: String,
    /// Median nanoseconds per call.
    pub ns: f64,
    /// Fuel one call burns (deterministic).
    pub fuel: u64,
}

/// The cost of one warm call into each bench component — and, for
/// comparison, into the standard plugins the rule set comes from — on the
/// context of the last event of a generated account with a health score in
/// it: the pipeline's stages one by one. Each bench component is also
/// called with the same context with its strings emptied and its attributes
/// dropped ("bare"), and with its scores dropped too (but for the health
/// trigger, which needs them), which shows what lowering the context costs.
/// Timed `calls` times, 9 batches, median.
pub fn call_costs(calls: usize) -> anyhow::Result<Vec<CallCost>> {
    use vigil_host::pipeline::AccountState;
    use vigil_host::runtime::bindings::types::{Context, Rag, ScoreSummary, Severity};
    use vigil_host::runtime::{CallInput, PluginKind, Signal};

    let (runtime, mut plugins) = bench_plugins(Interruption::FuelAndEpoch, InstanceMode::Warm)?;
    let mut names: Vec<String> = COMPONENTS.iter().map(|n| (*n).to_string()).collect();
    for (name, bytes) in vigil_host::standard::STANDARD_PLUGINS {
        if [
            "health-score",
            "health-triggers",
            "usage-triggers",
            "tier-conditions",
        ]
        .contains(name)
        {
            let plugin = runtime
                .load(bytes, std::collections::BTreeMap::new(), InstanceMode::Warm)
                .map_err(|e| anyhow!("{name}: {e}"))?;
            plugins.push(std::sync::Arc::new(plugin));
            names.push(format!("{name} (standard)"));
        }
    }
    let account = generate_portfolio(1, 42)
        .pop()
        .ok_or_else(|| anyhow!("empty portfolio"))?;
    let mut state = AccountState::new(account.account.clone());
    for event in &account.events {
        let payload = PayloadNumbers::parse(&event.payload)?;
        state.record_event(&event.kind, event.occurred_at, &payload);
    }
    let event = account.events.last().ok_or_else(|| anyhow!("no event"))?;
    let ctx = Context {
        account: state.account.clone(),
        event: event.clone(),
        now: event.occurred_at,
        scores: vec![ScoreSummary {
            name: "health".into(),
            value: 55.0,
            band: "stable".into(),
            rag: Rag::Yellow,
        }],
    };
    let signal = Signal {
        name: "health.stable".into(),
        severity: Severity::Low,
        reason: "bench rule".into(),
        dedup_key: format!("{}:health.stable", ctx.account.id).into(),
        cooldown_secs: 0,
    };
    let mut bare = ctx.clone();
    bare.account.id.clear();
    bare.account.name.clear();
    bare.account.attributes.clear();
    bare.event.id.clear();
    bare.event.account_id.clear();
    bare.event.kind.clear();
    bare.event.payload = "{}".into();

    // With empty strings the host still calls the guest's allocator once
    // per string and list; with no attributes and no scores it makes 6
    // fewer of those calls (a list of one attribute or one score is a list
    // and two strings).
    let mut slim = bare.clone();
    slim.scores.clear();
    let mut history = state.history.clone();
    let mut rows = Vec::new();
    let runs = names
        .iter()
        .zip(&plugins)
        .map(|(name, plugin)| (name.clone(), plugin, &ctx))
        .chain(
            names
                .iter()
                .zip(&plugins)
                .take(COMPONENTS.len())
                .map(|(name, plugin)| (format!("{name} (bare context)"), plugin, &bare)),
        )
        .chain(
            names
                .iter()
                .zip(&plugins)
                .take(COMPONENTS.len())
                .filter(|(name, _)| name.as_str() != "bench-health-signals")
                .map(|(name, plugin)| (format!("{name} (bare, no scores)"), plugin, &slim)),
        );
    for (name, plugin, ctx) in runs {
        let mut call = || {
            let input = CallInput {
                now: ctx.now,
                seed: [7; 32],
                history: &mut history,
            };
            match plugin.kind() {
                PluginKind::Scorer => plugin.score(input, ctx).record,
                PluginKind::Condition => plugin.check(input, ctx, &signal).record,
                _ => plugin.evaluate(input, ctx).record,
            }
        };
        let mut fuel = 0;
        for _ in 0..100 {
            let record = call();
            if !record.outcome.is_ok() {
                bail!("{name}: {}", record.outcome);
            }
            fuel = record.fuel_used;
        }
        // The median of 9 batches: single runs on a shared machine vary.
        let mut batches = Vec::new();
        for _ in 0..9 {
            let started = Instant::now();
            for _ in 0..calls.max(1) {
                black_box(call());
            }
            batches.push(started.elapsed());
        }
        rows.push(CallCost {
            name,
            ns: median(&mut batches).as_secs_f64() * 1e9 / calls.max(1) as f64,
            fuel,
        });
    }
    Ok(rows)
}

/// p50 and p99 of instantiating each bench component from its
/// pre-instantiated component (new store, instance, exports; not the
/// teardown), in µs, the components taking turns ([`in_turns`]): the five
/// plugins and the ruleset.
pub fn instantiation(samples: usize) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let names: Vec<&str> = COMPONENTS
        .iter()
        .chain(RULESET_COMPONENTS)
        .copied()
        .collect();
    let (_runtime, plugins) =
        bench_plugins_of(&names, Interruption::FuelAndEpoch, InstanceMode::Fresh)?;
    let instantiate = |at: usize| {
        let (name, plugin) = names
            .get(at)
            .zip(plugins.get(at))
            .ok_or_else(|| anyhow!("no bench component {at}"))?;
        plugin
            .instantiate_once()
            .map_err(|e| anyhow!("{name}: {e}"))
    };
    // Warm the pool's slots and the caches first.
    in_turns(plugins.len(), 100, instantiate)?;
    let times = in_turns(plugins.len(), samples.max(1), instantiate)?;
    Ok(names
        .iter()
        .zip(times)
        .map(|(name, times)| {
            let (p50, p99) = p50_p99_micros(times);
            ((*name).to_string(), p50, p99)
        })
        .collect())
}

/// Times `samples` calls of `time(k)` for each of `count` subjects, the
/// subjects taking turns (one call each, round after round) rather than
/// one subject's calls after another's: on these VMs a slower spell
/// (1.4–1.9x every instantiation's time, whatever the component, from a
/// few milliseconds to seconds) would otherwise fall on one subject's
/// samples alone and, covering half of them, move its p50 (BENCHMARKS.md,
/// "Runs by VM", 2026-12-07 from 11:06). Taking turns spreads such a
/// spell over every subject alike.
fn in_turns(
    count: usize,
    samples: usize,
    mut time: impl FnMut(usize) -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut times: Vec<Vec<Duration>> = (0..count).map(|_| Vec::with_capacity(samples)).collect();
    for _ in 0..samples {
        for (at, times) in times.iter_mut().enumerate() {
            times.push(time(at)?);
        }
    }
    Ok(times)
}

/// The p50 and p99 of `times`, in µs (0 for no times).
fn p50_p99_micros(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.50), at(0.99))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpu}, {cores} cores")
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Runs the whole comparison and renders the report; fails if the engines
/// disagree.
pub fn run(options: Options) -> anyhow::Result<String> {
    let mut out = String::new();
    let portfolio = generate_portfolio(options.accounts, options.seed);
    let mut contenders = contenders()?;
    let checked = check_agreement(&mut contenders, &portfolio)?;
    // What the pipeline did per event, counted in the checked run.
    let mut tally = Vigil::new("tally", Interruption::FuelAndEpoch, InstanceMode::Warm)?;
    outcomes(&mut tally, &portfolio)?;
    let (events, calls, fuel) = tally.tally();
    let _ = writeln!(
        out,
        "vigil bench: {} accounts (seed {}), {} events, one thread; median of {} rounds\nmachine: {}\n",
        options.accounts,
        options.seed,
        thousands(checked as f64),
        options.rounds,
        machine()
    );
    let _ = writeln!(
        out,
        "Agreement: the {} engines give the same score (within {:e}), band, signals and verdicts on all {} events.\n",
        contenders.len(),
        crate::rules::SCORE_TOLERANCE,
        thousands(checked as f64)
    );

    let mut ruled = Vigil::ruleset("tally", Interruption::FuelAndEpoch, InstanceMode::Warm)?;
    outcomes(&mut ruled, &portfolio)?;
    let (ruled_events, ruled_calls, ruled_fuel) = ruled.tally();
    let _ = writeln!(
        out,
        "vigil per event: as 5 plugins {:.2} plugin calls (1 score, 3 evaluate, the rest check: one per signal), {:.0} fuel; as 1 ruleset {:.2} calls (rule), {:.0} fuel\n",
        calls as f64 / events.max(1) as f64,
        fuel as f64 / events.max(1) as f64,
        ruled_calls as f64 / ruled_events.max(1) as f64,
        ruled_fuel as f64 / ruled_events.max(1) as f64
    );
    let measured = measure(&mut contenders, &portfolio, options.rounds)?;
    let native = measured
        .first()
        .map_or(1.0, Measured::ns_per_event)
        .max(1e-9);
    let vigil = measured
        .get(VIGIL_PLUGINS)
        .map_or(0.0, Measured::events_per_sec)
        .max(1e-9);
    let ruleset = measured
        .get(VIGIL_RULESET)
        .map_or(0.0, Measured::events_per_sec)
        .max(1e-9);
    let _ = writeln!(
        out,
        "{:<30} {:>12} {:>10} {:>14} {:>12}",
        "engine", "events/s", "ns/event", "x native time", "5 plugins' speed"
    );
    for m in &measured {
        let _ = writeln!(
            out,
            "{:<30} {:>12} {:>10.0} {:>13.2}x {:>11.2}x",
            m.name,
            thousands(m.events_per_sec()),
            m.ns_per_event(),
            m.ns_per_event() / native,
            vigil / m.events_per_sec().max(1e-9)
        );
    }

    // The ratios the targets are about, taken within each round, for
    // vigil at `at` among the engines.
    let by_round = |at: usize, name: &str| -> (f64, f64, f64) {
        match (measured.get(at), measured.iter().find(|m| m.name == name)) {
            (Some(vigil), Some(other)) => ratio_spread(&speed_by_round(vigil, other)),
            _ => (0.0, 0.0, 0.0),
        }
    };
    for at in [VIGIL_PLUGINS, VIGIL_RULESET] {
        let Some(this) = measured.get(at) else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n{} speed within each round (the engines run back to back in a round, so drift between rounds cancels)",
            this.name
        );
        let _ = writeln!(out, "  {:<28} {:>8} {:>18}", "over", "median", "range");
        // Every engine but this one.
        for m in measured.iter().filter(|m| m.name != this.name) {
            let (middle, low, high) = by_round(at, &m.name);
            let _ = writeln!(
                out,
                "  {:<28} {:>7.2}x {:>8.2}x – {:.2}x",
                m.name, middle, low, high
            );
        }
    }

    let warm = |name: &str, interruption: Interruption| -> anyhow::Result<Box<dyn Contender>> {
        Ok(Box::new(
            Vigil::new(name, interruption, InstanceMode::Warm)?.batched(BATCH),
        ))
    };
    // Two tables: how vigil is called, then how it is interrupted.
    let mut modes: Vec<Box<dyn Contender>> = vec![
        warm(
            &format!("batches of {BATCH} events"),
            Interruption::FuelAndEpoch,
        )?,
        Box::new(Vigil::new(
            "one event per call",
            Interruption::FuelAndEpoch,
            InstanceMode::Warm,
        )?),
        Box::new(Vigil::new(
            "fresh instance per call",
            Interruption::FuelAndEpoch,
            InstanceMode::Fresh,
        )?),
        Box::new(
            Vigil::one_trigger(
                "3 triggers as 1 plugin",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
        Box::new(
            Vigil::ruleset(
                "1 ruleset (contract 0.7)",
                Interruption::FuelAndEpoch,
                InstanceMode::Warm,
            )?
            .batched(BATCH),
        ),
    ];
    let call_modes = modes.len();
    modes.extend([
        warm("fuel + epoch (default)", Interruption::FuelAndEpoch)?,
        warm("fuel only", Interruption::Fuel)?,
        warm("epoch only", Interruption::Epoch)?,
        warm("neither", Interruption::None)?,
    ]);
    // Every variant must give the same decisions before it is timed.
    let mut reference: Vec<Box<dyn Contender>> =
        vec![Box::new(FactsHost::new("native Rust", Native))];
    reference.append(&mut modes);
    check_agreement(&mut reference, &portfolio)?;
    let modes = measure(&mut reference[1..], &portfolio, options.rounds)?;
    for (title, rows) in [
        (
            "\nvigil calls (warm instances unless said)",
            &modes[..call_modes],
        ),
        ("\nvigil interruption (warm, batched)", &modes[call_modes..]),
    ] {
        let _ = writeln!(out, "{title}");
        let _ = writeln!(
            out,
            "  {:<28} {:>12} {:>10} {:>11}   (range within rounds)",
            "", "events/s", "ns/event", "time"
        );
        let Some(base) = rows.first() else {
            continue;
        };
        for m in rows {
            // Against the first row within each round, as the engines'
            // ratios are: the variants of a round run back to back, so a
            // machine that slows down between rounds does not tilt them.
            let (middle, low, high) = time_change_by_round(m, base);
            let _ = writeln!(
                out,
                "  {:<28} {:>12} {:>10.0} {:>+9.1} %   ({low:+.1} – {high:+.1} %)",
                m.name,
                thousands(m.events_per_sec()),
                m.ns_per_event(),
                middle,
            );
        }
    }

    let instantiation = instantiation(options.samples)?;
    let _ = writeln!(
        out,
        "\nInstantiation from InstancePre (new store + instance + exports, not the teardown), {} samples each, the components taking turns",
        options.samples
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>10} {:>10}",
        "component", "p50 µs", "p99 µs"
    );
    for (name, p50, p99) in &instantiation {
        let _ = writeln!(out, "  {name:<28} {p50:>10.2} {p99:>10.2}");
    }

    let worst_p50 = instantiation
        .iter()
        .map(|(_, p50, _)| *p50)
        .fold(0.0, f64::max);
    let _ = writeln!(out, "\nTargets (design.md)");
    for (at, rate, how) in [
        (VIGIL_PLUGINS, vigil, "as 5 plugins"),
        (VIGIL_RULESET, ruleset, "as 1 ruleset"),
    ] {
        let (over_rhai, _, _) = by_round(at, "rhai");
        let (over_zen, _, _) = by_round(at, "zen-engine");
        let _ = writeln!(
            out,
            "  pipeline >= {} events/s per core, {how}: {} events/s, {}",
            thousands(targets::PIPELINE_EVENTS_PER_SEC),
            thousands(rate),
            verdict(rate >= targets::PIPELINE_EVENTS_PER_SEC)
        );
        let _ = writeln!(
            out,
            "  >= {:.0}x rhai, {how}: {over_rhai:.2}x (median within rounds), {}",
            targets::OVER_RHAI,
            verdict(over_rhai >= targets::OVER_RHAI)
        );
        let _ = writeln!(
            out,
            "  >= {:.0}x zen-engine, {how}: {over_zen:.2}x (median within rounds), {}",
            targets::OVER_ZEN,
            verdict(over_zen >= targets::OVER_ZEN)
        );
    }
    let _ = writeln!(
        out,
        "  instantiation p50 <= {:.0} µs: {worst_p50:.2} µs (slowest component), {}",
        targets::INSTANTIATE_P50_US,
        verdict(worst_p50 <= targets::INSTANTIATE_P50_US)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use anyhow::anyhow;

    use super::{
        Measured, in_turns, p50_p99_micros, ratio_spread, speed_by_round, time_change_by_round,
    };

    fn measured(millis: &[u64]) -> Measured {
        let rounds: Vec<Duration> = millis.iter().map(|m| Duration::from_millis(*m)).collect();
        Measured {
            name: String::new(),
            events: 1,
            median: Duration::ZERO,
            rounds,
        }
    }

    #[test]
    fn speed_within_rounds_is_unmoved_by_a_machine_slowing_down_between_rounds() {
        // The machine gets 2x and then 4x slower: each round's ratio is
        // still 1.5x, where the medians' ratio would depend on how the
        // slow rounds fell.
        let engine = measured(&[10, 20, 40]);
        let other = measured(&[15, 30, 60]);
        let ratios = speed_by_round(&engine, &other);
        assert_eq!(ratios.len(), 3);
        for ratio in &ratios {
            assert!((ratio - 1.5).abs() < 1e-9, "{ratio}");
        }
    }

    #[test]
    fn a_variants_time_change_is_taken_within_rounds_against_the_base_row() {
        // The variant takes 10 % less time than the base in every round but
        // the third, where it takes 20 % more; the machine slows down 3x
        // over the rounds, which the medians' ratio would mix in.
        let base = measured(&[100, 200, 200, 300, 300]);
        let variant = measured(&[90, 180, 240, 270, 270]);
        let (middle, low, high) = time_change_by_round(&variant, &base);
        assert!((middle + 10.0).abs() < 1e-9, "{middle}");
        assert!((low + 10.0).abs() < 1e-9, "{low}");
        assert!((high - 20.0).abs() < 1e-9, "{high}");
        // A row against itself changes nothing.
        assert_eq!(time_change_by_round(&base, &base), (0.0, 0.0, 0.0));
    }

    #[test]
    fn a_slow_spell_falls_on_every_subject_alike_when_they_take_turns() {
        // Three subjects, ten samples each: every call takes 2 µs but for a
        // spell over the 12 calls from the 9th, which take 4 µs. One
        // subject after another, the spell would be the first subject's
        // last 2 samples and all 10 of the second's, whose p50 would be
        // 4 µs; in turns it is 4 samples of each, and every p50 stays 2 µs.
        let mut call = 0;
        let times = in_turns(3, 10, |_| {
            call += 1;
            let slow = (9..21).contains(&call);
            Ok(Duration::from_micros(if slow { 4 } else { 2 }))
        })
        .unwrap();
        assert_eq!(call, 30);
        for times in times {
            assert_eq!(times.len(), 10);
            assert_eq!(times.iter().filter(|t| t.as_micros() == 4).count(), 4);
            assert_eq!(p50_p99_micros(times), (2.0, 4.0));
        }
    }

    #[test]
    fn a_failed_sample_ends_the_timing_with_its_error() {
        let error = in_turns(2, 5, |at| {
            if at == 1 {
                Err(anyhow!("component 1 failed"))
            } else {
                Ok(Duration::from_micros(1))
            }
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "component 1 failed");
    }

    #[test]
    fn percentiles_of_no_times_are_zero() {
        assert_eq!(p50_p99_micros(Vec::new()), (0.0, 0.0));
    }

    #[test]
    fn a_ratio_spread_is_the_median_and_the_extremes() {
        assert_eq!(ratio_spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(ratio_spread(&[]), (0.0, 0.0, 0.0));
    }
}
