//! Criterion benches of the bench rule set: each engine over one small
//! portfolio (throughput in events; vigil as five plugins and as one
//! ruleset), vigil's instance and interruption modes and its three
//! triggers as one plugin, and instantiation from a pre-instantiated
//! component.

// A bench that cannot set up has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};
use vigil_host::demo::generate_portfolio;
use vigil_host::runtime::{InstanceMode, Interruption};
use xtask::bench::{contenders, time_run};
use xtask::engines::{COMPONENTS, Contender, Vigil, bench_plugins};

fn engines(c: &mut Criterion) {
    let portfolio = generate_portfolio(20, 42);
    let events = portfolio.iter().map(|a| a.events.len()).sum::<usize>() as u64;
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let mut all: Vec<Box<dyn Contender>> = contenders().expect("engines start");
    all.push(Box::new(
        Vigil::new(
            "vigil fresh",
            Interruption::FuelAndEpoch,
            InstanceMode::Fresh,
        )
        .expect("vigil starts"),
    ));
    all.push(Box::new(
        Vigil::new(
            "vigil one event per call",
            Interruption::FuelAndEpoch,
            InstanceMode::Warm,
        )
        .expect("vigil starts"),
    ));
    all.push(Box::new(
        Vigil::one_trigger(
            "vigil 3 triggers as 1 plugin",
            Interruption::FuelAndEpoch,
            InstanceMode::Warm,
        )
        .expect("vigil starts")
        .batched(xtask::bench::BATCH),
    ));

    for (name, interruption) in [
        ("vigil fuel only", Interruption::Fuel),
        ("vigil epoch only", Interruption::Epoch),
        ("vigil neither", Interruption::None),
    ] {
        all.push(Box::new(
            Vigil::new(name, interruption, InstanceMode::Warm)
                .expect("vigil starts")
                .batched(xtask::bench::BATCH),
        ));
    }
    for contender in &mut all {
        let name = contender.name().to_string();
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| time_run(contender.as_mut(), &portfolio).expect("run"))
                    .sum()
            })
        });
    }
    group.finish();
}

fn instantiation(c: &mut Criterion) {
    let (_runtime, plugins) =
        bench_plugins(Interruption::FuelAndEpoch, InstanceMode::Fresh).expect("plugins load");
    let mut group = c.benchmark_group("instantiate");
    for (name, plugin) in COMPONENTS.iter().zip(&plugins) {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| plugin.instantiate_once().expect("instantiates"))
                    .sum()
            })
        });
    }
    group.finish();
}

/// The groups; `criterion_group!` makes a public function without docs.
mod groups {
    #![allow(missing_docs)]
    use super::{engines, instantiation};
    criterion::criterion_group!(benches, engines, instantiation);
}

criterion_main!(groups::benches);
