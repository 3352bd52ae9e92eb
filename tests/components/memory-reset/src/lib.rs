//! A scorer that reads its statics and then overwrites them, so that a
//! call on a fresh instance shows whether it got the component's memory
//! as the component's image has it: the host's pool resets a returned
//! instance's memory (by copying the pages it wrote back, where the kernel
//! can tell which; by unmapping them otherwise), and a slot's next
//! instance must not see any of the last one's writes.
use std::sync::atomic::{AtomicU64, Ordering};
use vigil_sdk::prelude::*;

/// Words in a 4 KiB page: one word a page is read and written.
const WORDS_PER_PAGE: usize = 4096 / 8;

/// Zero-initialised (`.bss`, not in the component's data): 2 MiB, more
/// than the host resets by copying (256 KiB), so both ways of resetting are
/// exercised.
static ZEROED: [AtomicU64; (2 << 20) / 8] = [const { AtomicU64::new(0) }; (2 << 20) / 8];

/// Initialised from the component's data: 64 KiB of sevens.
static SEVENS: [AtomicU64; (64 << 10) / 8] = [const { AtomicU64::new(7) }; (64 << 10) / 8];

/// Calls this instance has answered, this one included.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Factor `calls`: the calls this instance has answered; `zeroed` and
/// `sevens`: the pages of each static that did not hold their initial
/// value when the call began. A fresh instance answers 1, 0 and 0.
#[vigil_sdk::scorer(
    name = "memory-reset",
    description = "Reads, then overwrites, its statics.",
    score = "memory",
    factors = ["calls", "zeroed", "sevens"]
)]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let zeroed = overwrite(&ZEROED, 0, 1);
    let sevens = overwrite(&SEVENS, 7, 0);
    Ok(ScoreCardBuilder::new("memory")
        .factor("calls", 0.25, calls as f64, 0.0, "calls answered")
        .factor("zeroed", 0.25, zeroed as f64, 0.0, "pages not zero")
        .factor("sevens", 0.5, sevens as f64, 0.0, "pages not seven")
        .build(health_band))
}

/// Counts the pages of `words` whose first word is not `initial`, and
/// writes `with` into each.
fn overwrite(words: &[AtomicU64], initial: u64, with: u64) -> usize {
    words
        .iter()
        .step_by(WORDS_PER_PAGE)
        .filter(|word| word.swap(with, Ordering::Relaxed) != initial)
        .count()
}
