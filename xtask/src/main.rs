//! `cargo xtask <task>`: `bench` runs the side-by-side engine comparison.

use clap::{Parser, Subcommand};

/// The allocator the `vigil` binary serves with, so that the engines are
/// timed as they would run in it (every engine of the run shares it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vigil's task runner.
#[derive(Debug, Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Compare vigil with native Rust, rhai and zen-engine on one rule set:
    /// check that they agree, then time them (see BENCHMARKS.md).
    Bench {
        /// Accounts in the generated portfolio.
        #[arg(long, default_value_t = xtask::bench::Options::default().accounts)]
        accounts: usize,
        /// The portfolio's seed.
        #[arg(long, default_value_t = xtask::bench::Options::default().seed)]
        seed: u64,
        /// Timed rounds per engine (the median is reported).
        #[arg(long, default_value_t = xtask::bench::Options::default().rounds)]
        rounds: usize,
        /// Instantiations timed per component.
        #[arg(long, default_value_t = xtask::bench::Options::default().samples)]
        samples: usize,
    },
    /// Run one engine alone over the portfolio, for a profiler (perf,
    /// valgrind --tool=callgrind): no check, no table.
    Profile {
        /// `native`, `vigil` (batched), `vigil-single` (one event per call), `vigil-fresh`,
        /// `vigil-one-trigger` (the three triggers as one plugin), `vigil-ruleset` (the rules
        /// as one contract 0.7 ruleset), `vigil-first-N` (the pipeline
        /// with the first N bench plugins), `rhai` or `zen`; or `stages`
        /// (the pipeline with 0, 1, … 5 of the bench plugins), `calls` (one
        /// warm call into each bench component, `--accounts` × 100 times) or
        /// `instantiate` (instantiation alone, `--accounts` × 100 samples).
        engine: String,
        /// Accounts in the generated portfolio.
        #[arg(long, default_value_t = 100)]
        accounts: usize,
        /// The portfolio's seed.
        #[arg(long, default_value_t = xtask::bench::Options::default().seed)]
        seed: u64,
        /// Runs over the portfolio.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Bench {
            accounts,
            seed,
            rounds,
            samples,
        } => {
            let report = xtask::bench::run(xtask::bench::Options {
                accounts,
                seed,
                rounds,
                samples,
            })?;
            print!("{report}");
        }
        Task::Profile {
            engine,
            accounts,
            seed,
            rounds,
        } => print!(
            "{}",
            xtask::bench::profile(&engine, accounts, seed, rounds)?
        ),
    }
    Ok(())
}
