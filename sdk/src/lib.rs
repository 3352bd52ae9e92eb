//! Write vigil plugins in Rust.
//!
//! A vigil plugin is a pure function: it reads a [`Context`] (the account,
//! the event, the evaluation time, the scores computed so far) and returns a
//! score card, signals, a verdict or intents. The host does everything else.
//!
//! ```ignore
//! use vigil_sdk::prelude::*;
//!
//! #[vigil_sdk::scorer(
//!     name = "seat-usage",
//!     description = "Seat usage as a score.",
//!     score = "seat-usage",
//!     factors = ["usage"],
//! )]
//! fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
//!     let usage = ratio(ctx.account.active_users, ctx.account.licensed_seats);
//!     Ok(ScoreCardBuilder::new("seat-usage")
//!         .factor("usage", 1.0, usage, usage * 100.0, "active / licensed seats")
//!         .build(health_band))
//! }
//! ```
//!
//! The same function compiles natively, so plugin rules are unit tested with
//! `cargo test` and the helpers of [`testing`]; built with
//! `cargo build --target wasm32-wasip2 --release` it becomes a component the
//! host loads, and built for `wasm32-unknown-unknown` with the linker
//! `wasm-component-ld`, a component without WASI that imports only the
//! contract and instantiates faster (the SDK's README, "Building without
//! WASI").

use std::borrow::Cow;

pub mod builders;
pub mod context;
pub mod env;
pub mod small_blocks;
pub mod testing;

/// The allocator of plugins built for Wasm (feature `fast-alloc`, on by
/// default): freed blocks of up to [`small_blocks::MAX_SMALL`] bytes kept
/// on free lists per size ([`small_blocks::SmallBlocks`]), in front of talc
/// instead of wasi-libc's dlmalloc, with talc's first heap in the
/// instance's initial memory (see the module). A plugin's guest code
/// allocates for every string and list it builds and the host's results
/// are lifted from: in the bench rule set, dlmalloc's `malloc` and `free`
/// were a third of the time spent in Wasm code, and talc's still a quarter
/// of its instructions (BENCHMARKS.md, "What was made faster"). A plugin
/// that sets its own `#[global_allocator]` turns the feature off
/// (`default-features = false`).
#[cfg(all(
    feature = "fast-alloc",
    target_arch = "wasm32",
    not(target_feature = "atomics")
))]
pub mod allocator;

/// Bindings generated from the vigil WIT contract (`wit/v0.7.0`): the shared
/// types and the host imports. Plugin exports are generated in the plugin
/// crate by the attribute macros.
pub mod wit {
    #![allow(missing_docs, unsafe_code, clippy::all)]
    wit_bindgen::generate!({
        path: "../wit/v0.7.0",
        inline: "
            package vigil:sdk;
            world imports {
                import vigil:plugin/types@0.7.0;
                import vigil:plugin/host@0.7.0;
                import vigil:plugin/history@0.7.0;
                import vigil:plugin/batching@0.7.0;
            }
        ",
        world: "vigil:sdk/imports",
        generate_all,
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

pub use wit::vigil::plugin::history::MetricWindow;
pub use wit::vigil::plugin::host::LogLevel;
pub use wit::vigil::plugin::types::{
    Channel, Escalate, EscalationLevel, Freeze, Industry, Intent, IntentKind, Notify, PluginError,
    PluginInfo, PluginKind, Rag, Schedule, ScoreInfo, Severity, Signal, Task, Tier, Timestamp,
    Timing, Webhook, WindowSpec,
};

/// One weighted factor of a [`ScoreCard`]: the contract's `factor`, its
/// name and note as `Cow<'static, str>`, so that a name or note written as
/// a string literal costs no allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    /// The factor's name, for example `usage` or `payment-health`: one of
    /// the scorer's declared `factors`.
    pub name: Cow<'static, str>,
    /// The factor's weight, 0 to 1 (the host refuses any other); a card's
    /// weights usually add up to 1, and at most to 1 for
    /// [`ScoreCardBuilder`]'s contributions to add up to the value.
    pub weight: f64,
    /// The factor's raw input, in its own unit (a ratio, a count, ...).
    pub raw: f64,
    /// The factor's normalised reading, 0 to 100.
    pub value: f64,
    /// Points this factor contributes to the score: `weight * value`.
    pub contribution: f64,
    /// A short human explanation of the reading.
    pub note: Cow<'static, str>,
}

/// The result of a scorer: the contract's `score-card`, its names as
/// `Cow<'static, str>`.
///
/// A scorer declares its score once (`score`, `bands` and `factors` on
/// [`scorer`] or [`ruleset`]): the host receives each card's score, band
/// and factors as positions among the declared ones (since contract 0.6), so a card whose name,
/// band or factor is not declared is an error for its item (`internal:
/// ... is not declared`). Each factor's note travels as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCard {
    /// The score's name, for example `health` or `lead`: the declared
    /// `score`.
    pub name: Cow<'static, str>,
    /// The value, 0 to 100: the sum of the factor contributions.
    pub value: f64,
    /// The band label, for example `critical`, `declining`, `stable`,
    /// `optimal` for health or `hot`, `warm`, `cold` for leads: one of the
    /// declared `bands`.
    pub band: Cow<'static, str>,
    /// The traffic-light reading of the value.
    pub rag: Rag,
    /// The weighted factors that explain the value.
    pub factors: Vec<Factor>,
}

/// A policy tag of a [`Verdict`]. A condition returns only tags it
/// declares (the macros' `tags` option), each named with a string literal
/// (`"hipaa".into()`), which costs no allocation; the verdict an action is
/// handed carries every condition's tags, as the host's copies.
pub type Tag = std::borrow::Cow<'static, str>;

/// A condition's decision about a signal in the account's context: the
/// contract's `verdict`, with its policy tags as [`Tag`]s.
///
/// A condition may only return tags it declares (`tags = [...]` on
/// [`condition`], [`playbook`] or [`ruleset`]): the host receives each verdict's tags
/// as bits of the declared list (since contract 0.5), so they come back in the
/// declared order, each once, whatever order the verdict listed them in;
/// a verdict with a tag that is not declared is an error for its item
/// (`internal: policy tag ... is not declared`).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the signal should be acted upon at all.
    pub applies: bool,
    /// A human explanation of the decision.
    pub reason: String,
    /// Policy tags the actions take into account, for example
    /// `executive-notification`, `monitoring-24x7`, `hipaa`.
    pub policy_tags: Vec<Tag>,
}

impl From<&wit::vigil::plugin::types::Verdict> for Verdict {
    fn from(verdict: &wit::vigil::plugin::types::Verdict) -> Self {
        Self {
            applies: verdict.applies,
            reason: verdict.reason.clone(),
            policy_tags: verdict
                .policy_tags
                .iter()
                .map(|tag| Tag::Owned(tag.clone()))
                .collect(),
        }
    }
}

pub use context::{Account, Attribute, Context, Event, ScoreSummary};

pub use builders::{
    DAY_MS, HEALTH_BANDS, HOUR_MS, IntentBuilder, LEAD_BANDS, ScoreCardBuilder, SignalBuilder,
    channel_name, health_band, lead_band, level_name, ratio, short_number,
};
pub use env::{config, log, window};

/// Exports a function `fn(&Context<'_>) -> Result<ScoreCard, PluginError>` as a
/// scorer plugin. Options: `name`, `version`, `description`, `subscribes`,
/// `config_schema`, `fuel`, `windows`, and the score it computes: `score`
/// (required), `bands` and `factors`.
///
/// `score = "health"` names the score; `bands = ["hot", "warm", "cold"]`
/// declares the band labels its cards may carry (by default
/// [`HEALTH_BANDS`], those of [`health_band`]); `factors = ["usage",
/// "login-trend"]` the names of the factors they may list (at most 64 of
/// each, each 1 to 128 bytes, none twice). The host shows them in `vigil
/// plugin check`; each card sends its score, band and factors as positions
/// among them, so a name not declared is an error for the item that
/// returns it.
///
/// `windows = [("logins", 30, 0), ("logins", 30, 30)]` declares the history
/// windows the plugin reads (the arguments of [`window`]): the host computes
/// them for every item and sends them with the batch, so [`window`]
/// answers a declared window without calling the host. An undeclared
/// window still works, one host call each.
pub use vigil_sdk_macros::scorer;

/// Exports a function `fn(&Context<'_>) -> Result<Vec<Signal>, PluginError>` as
/// a trigger plugin. Same options as [`scorer`] but for `score`, `bands` and
/// `factors`, which only a scorer declares.
pub use vigil_sdk_macros::trigger;

/// Exports a function `fn(&Context<'_>, &Signal) -> Result<Verdict, PluginError>`
/// as a condition plugin. Same options as [`trigger`], and `tags`:
///
/// `tags = ["hipaa", "sox"]` declares the policy tags the plugin's
/// verdicts may carry (at most 64, each 1 to 128 bytes, none twice). The
/// host shows them in `vigil plugin check`; each verdict sends its tags
/// as bits of this list, so a tag not declared here is an error for the
/// item that returns it.
pub use vigil_sdk_macros::condition;

/// Exports a function
/// `fn(&Context<'_>, &Signal, &Verdict) -> Result<Vec<Intent>, PluginError>` as
/// an action plugin. Same options as [`trigger`].
pub use vigil_sdk_macros::action;

/// Exports a type implementing [`Playbook`] as a playbook plugin: put it on
/// the `impl Playbook for T` block. Same options as [`condition`]
/// (`tags` included).
pub use vigil_sdk_macros::playbook;

/// Exports a type implementing [`Ruleset`] as a ruleset plugin (contract
/// 0.7): put it on the `impl Ruleset for T` block. Same options as
/// [`scorer`] (`score` required, `bands`, `factors`) and `tags`, as on
/// [`condition`].
///
/// A ruleset runs a scorer's, triggers' and a condition's rules in one
/// plugin call an event: for each event the glue calls
/// [`Ruleset::score`], then [`Ruleset::evaluate`] and [`Ruleset::check`]
/// for each signal, with the card just computed among `ctx.scores` (as a
/// scorer's card is among a trigger's scores), and sends the host the
/// card, the signals and the verdicts together. Every call into a plugin
/// has a fixed cost whatever its rules; the bench's rules as one
/// ruleset, in place of a scorer, three triggers and a condition (called
/// for each signal), run 0.66x the instructions an event and 0.70–0.78x
/// the time (BENCHMARKS.md). The host takes the card as a scorer's, the
/// signals as a trigger's (every other condition checks them too and every
/// action plans them) and each verdict as one more condition's. An error
/// from `score` or `evaluate` fails the event's whole ruling: the host
/// keeps the last good score, flagged stale, and raises nothing; an error
/// from `check` on a signal is a verdict that the signal does not apply
/// (`check failed (...): ...`), as a failing condition's is.
///
/// The windows a ruleset declares are computed before its call, so its
/// own score of this evaluation is not in them (a separate trigger's
/// windows of that score would include it): read the card from
/// `ctx.scores`, and a score's history with an offset of a day or more.
pub use vigil_sdk_macros::ruleset;

/// An industry playbook: a trigger, a condition and an action in one plugin.
pub trait Playbook {
    /// Turns the event, scores and history into signals.
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError>;
    /// Decides whether a signal applies in this account's context.
    fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError>;
    /// Plans the intents for a signal that applies.
    fn plan(
        ctx: &Context<'_>,
        signal: &Signal,
        verdict: &Verdict,
    ) -> Result<Vec<Intent>, PluginError>;
}

/// A ruleset (contract 0.7): a scorer's, triggers' and a condition's
/// rules, run in one plugin call an event (see [`ruleset`]).
pub trait Ruleset {
    /// Computes the account's score: a card of the declared score.
    fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError>;
    /// Turns the event, the score just computed (in `ctx.scores`) and the
    /// history into signals.
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError>;
    /// Decides whether one of those signals applies in this account's
    /// context (the score just computed in `ctx.scores`). An error means
    /// the signal does not apply.
    fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError>;
}

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Account, Channel, Context, DAY_MS, EscalationLevel, Event, Factor, HEALTH_BANDS, HOUR_MS,
        Industry, Intent, IntentBuilder, IntentKind, LEAD_BANDS, LogLevel, MetricWindow, Playbook,
        PluginError, Rag, Ruleset, ScoreCard, ScoreCardBuilder, Severity, Signal, SignalBuilder,
        Tag, Tier, Timestamp, Timing, Verdict, config, health_band, lead_band, log, ratio,
        short_number, window,
    };
}

/// What the attribute macros expand to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use std::borrow::Cow;

    /// The score a scorer declares (the macro's `score`, `bands` and
    /// `factors`), which its packed cards name by position.
    pub struct DeclaredScore {
        /// The score's name.
        pub name: &'static str,
        /// Its band labels.
        pub bands: &'static [&'static str],
        /// Its factors' names.
        pub factors: &'static [&'static str],
    }

    use crate::wit::vigil::plugin::types::{
        PackedCheckItems, PackedContexts, PackedFactor, PackedRuling, PackedRulings,
        PackedScoreCard, PackedScoreCards, PackedSignal, PackedSignals, PackedVerdict,
        PackedVerdicts, Span,
    };
    use crate::{
        Account, Attribute, Context, Event, Industry, MetricWindow, PluginError, ScoreCard,
        ScoreSummary, Signal, Tier, Verdict,
    };

    /// Unpacks the contexts of a batch one at a time, into one
    /// [`Context`] whose strings borrow the batch's text: an item's
    /// context costs a span lookup per field and no copy. Its lists
    /// (attributes, scores) are reused from one context to the next.
    pub struct Unpacker<'a> {
        packed: &'a PackedContexts,
        /// Which context `ctx` holds.
        current: Option<usize>,
        ctx: Context<'a>,
    }

    impl<'a> Unpacker<'a> {
        /// An unpacker of `packed`.
        pub fn new(packed: &'a PackedContexts) -> Self {
            Self {
                packed,
                current: None,
                ctx: empty_context(),
            }
        }

        /// How many contexts the batch holds.
        pub fn len(&self) -> usize {
            self.packed.contexts.len()
        }

        /// Whether the batch holds no context.
        pub fn is_empty(&self) -> bool {
            self.packed.contexts.is_empty()
        }

        /// The context at `at`, unpacked.
        pub fn context(&mut self, at: usize) -> Result<&Context<'a>, PluginError> {
            if self.current != Some(at) {
                self.current = None;
                unpack(self.packed, at, &mut self.ctx)?;
                self.current = Some(at);
            }
            Ok(&self.ctx)
        }

        /// The context last unpacked, with `card` added to its scores (a
        /// ruleset's rules after its score see the card as a trigger sees
        /// a scorer's). The next [`Unpacker::context`] unpacks afresh.
        pub fn scored(&mut self, card: &ScoreCard) -> &Context<'a> {
            // Its scores are no longer the packed context's alone.
            self.current = None;
            let borrowed = |name: &Cow<'static, str>| -> Cow<'a, str> {
                match name {
                    Cow::Borrowed(name) => Cow::Borrowed(name),
                    Cow::Owned(name) => Cow::Owned(name.clone()),
                }
            };
            self.ctx.scores.push(ScoreSummary {
                name: borrowed(&card.name),
                value: card.value,
                band: borrowed(&card.band),
                rag: card.rag,
            });
            &self.ctx
        }
    }

    /// A context with nothing in it, to unpack into.
    fn empty_context<'a>() -> Context<'a> {
        Context {
            account: Account {
                id: Cow::Borrowed(""),
                name: Cow::Borrowed(""),
                tier: Tier::SmallBusiness,
                industry: Industry::Other,
                licensed_seats: 0,
                active_users: 0,
                arr: 0,
                contract_start: None,
                renewal_date: None,
                attributes: Vec::new(),
            },
            event: Event {
                id: Cow::Borrowed(""),
                account_id: Cow::Borrowed(""),
                kind: Cow::Borrowed(""),
                occurred_at: 0,
                payload: Cow::Borrowed(""),
            },
            now: 0,
            scores: Vec::new(),
        }
    }

    /// The batch's text at `span`.
    #[inline]
    fn text(packed: &PackedContexts, span: Span) -> Result<&str, PluginError> {
        text_at(&packed.text, span)
    }

    /// `text` at `span`.
    #[inline]
    fn text_at(text: &str, span: Span) -> Result<&str, PluginError> {
        let start = usize::try_from(span.start).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(span.len).unwrap_or(usize::MAX));
        match text.get(start..end) {
            Some(found) => Ok(found),
            None => Err(text_not_in_batch(start, end, text.len())),
        }
    }

    /// The elements of `list` at `span`.
    #[inline]
    fn elements<'a, T>(list: &'a [T], span: Span, what: &str) -> Result<&'a [T], PluginError> {
        let start = usize::try_from(span.start).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(span.len).unwrap_or(usize::MAX));
        match list.get(start..end) {
            Some(found) => Ok(found),
            None => Err(elements_not_in_batch(what, start, end, list.len())),
        }
    }

    // The two errors below are built out of line: the lookups above run
    // for every field of every context, and with the messages built inside
    // them they were not inlined into the unpacking (inlined, the bench's
    // pipeline took 0.97x the time, BENCHMARKS.md).

    /// The error for text `start..end` outside the batch's `len` bytes, or
    /// cutting a character in two.
    #[cold]
    #[inline(never)]
    fn text_not_in_batch(start: usize, end: usize, len: usize) -> PluginError {
        PluginError::InvalidInput(format!(
            "text {start}..{end} is not in the batch's {len} bytes"
        ))
    }

    /// The error for `what` `start..end` outside the batch's `len`.
    #[cold]
    #[inline(never)]
    fn elements_not_in_batch(what: &str, start: usize, end: usize, len: usize) -> PluginError {
        PluginError::InvalidInput(format!(
            "{what} {start}..{end} are not in the batch's {len}"
        ))
    }

    /// Sets `target` to `value`, keeping its allocation.
    #[inline]
    fn refill(target: &mut String, value: &str) {
        target.clear();
        append_short(target, value);
    }

    /// Unpacks context `at` of `packed` into `ctx`, its strings borrowed
    /// from `packed`'s text.
    fn unpack<'a>(
        packed: &'a PackedContexts,
        at: usize,
        ctx: &mut Context<'a>,
    ) -> Result<(), PluginError> {
        let Some(p) = packed.contexts.get(at) else {
            return Err(PluginError::InvalidInput(format!(
                "context {at} is not in a batch of {}",
                packed.contexts.len()
            )));
        };
        let account = &mut ctx.account;
        account.id = Cow::Borrowed(text(packed, p.account_id)?);
        account.name = Cow::Borrowed(text(packed, p.account_name)?);
        account.tier = p.tier;
        account.industry = p.industry;
        account.licensed_seats = p.licensed_seats;
        account.active_users = p.active_users;
        account.arr = p.arr;
        account.contract_start = p.contract_start;
        account.renewal_date = p.renewal_date;
        account.attributes.clear();
        for attribute in elements(&packed.attributes, p.attributes, "attributes")? {
            account.attributes.push(Attribute {
                key: Cow::Borrowed(text(packed, attribute.key)?),
                value: Cow::Borrowed(text(packed, attribute.value)?),
            });
        }
        let event = &mut ctx.event;
        event.id = Cow::Borrowed(text(packed, p.event_id)?);
        event.account_id = Cow::Borrowed(text(packed, p.event_account_id)?);
        event.kind = Cow::Borrowed(text(packed, p.event_kind)?);
        event.occurred_at = p.occurred_at;
        event.payload = Cow::Borrowed(text(packed, p.payload)?);
        ctx.now = p.now;
        ctx.scores.clear();
        for score in elements(&packed.scores, p.scores, "scores")? {
            ctx.scores.push(ScoreSummary {
                name: Cow::Borrowed(text(packed, score.name)?),
                value: score.value,
                band: Cow::Borrowed(text(packed, score.band)?),
                rag: score.rag,
            });
        }
        Ok(())
    }

    /// Called first by every export the macros generate. In a plugin built
    /// without WASI (`wasm32-unknown-unknown` linked into a component, as
    /// the standard plugins are) it installs, once, a panic hook that logs
    /// the panic's message at error level through the `host.log` import,
    /// since there is no stderr to print it to; the host quotes that line
    /// in the trap's reason. On WASI the standard library's own hook
    /// prints it to stderr, which the host quotes instead; natively it
    /// does nothing.
    #[inline]
    pub fn enter() {
        #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
        {
            static PANIC_HOOK: std::sync::Once = std::sync::Once::new();
            PANIC_HOOK.call_once(|| {
                std::panic::set_hook(Box::new(|info| {
                    crate::env::log(crate::LogLevel::Error, &info.to_string());
                }));
            });
        }
    }

    /// A declared history window: metric, days, offset days.
    pub type Declared = (&'static str, u32, u32);

    /// Keeps the declared windows of a batch's items, as the batch export
    /// received them (`windows`: each item's, item after item, in the order
    /// of `declared`), for [`crate::window`] until [`end_items`]. Natively
    /// it does nothing.
    #[inline]
    pub fn start_items(declared: &'static [Declared], windows: Vec<MetricWindow>) {
        #[cfg(target_arch = "wasm32")]
        crate::env::item_windows::set(declared, windows);
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (declared, windows);
    }

    /// Tells the host that the batch export now works on item `index`
    /// (the item's clock, history, randomness and limits), and points
    /// [`crate::window`] at the item's declared windows. Natively, where
    /// plugin functions are called directly, it does nothing.
    #[inline]
    pub fn begin_item(index: usize) {
        #[cfg(target_arch = "wasm32")]
        {
            crate::env::item_windows::select(index);
            crate::wit::vigil::plugin::batching::begin(u32::try_from(index).unwrap_or(u32::MAX));
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = index;
    }

    /// Tells the host that the batch export is done with its items, so
    /// what follows (returning the results, freeing the batch) is not
    /// counted against the last one. Natively it does nothing.
    #[inline]
    pub fn end_items() {
        #[cfg(target_arch = "wasm32")]
        {
            crate::env::item_windows::clear();
            crate::wit::vigil::plugin::batching::end();
        }
    }

    /// A span of `len` bytes or elements from `start`. Within a Wasm
    /// instance every length fits in 32 bits; natively a longer one is
    /// clamped, and the host would refuse it.
    fn span(start: usize, len: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    /// Appends `value` to `text`; its span there.
    fn push_text(text: &mut String, value: &str) -> Span {
        let start = text.len();
        append_short(text, value);
        span(start, value.len())
    }

    /// `text.push_str(value)`, with a value of 4 to 16 bytes copied as
    /// two overlapping copies of a fixed size, which compile to loads and
    /// stores: in Wasm a copy of a length known only at run time is a
    /// `memory.copy`, which wasmtime compiles into a call out of the
    /// guest, some 35 instructions with the copy. The names, notes and
    /// reasons a plugin returns are mostly that short: the bench's rules
    /// took 1.8 % fewer instructions an event as one ruleset, 1.7 % as
    /// five plugins, and a further 1.4 % and 0.4 % with a signal's name
    /// and dedup key built so too (BENCHMARKS.md, "What was made faster",
    /// 2026-12-08).
    #[inline]
    pub(crate) fn append_short(text: &mut String, value: &str) {
        let bytes = value.as_bytes();
        let len = bytes.len();
        if !(4..=16).contains(&len) {
            text.push_str(value);
            return;
        }
        text.reserve(len);
        // SAFETY: `reserve` made room for `len` more bytes after the
        // text's end; the copies read only `value`'s `len` bytes (its
        // first and last 8, or 4, which overlap when it is shorter than
        // 16, or 8) and write only the `len` bytes after the end, so the
        // text's new bytes are `value`'s, valid UTF-8 appended whole.
        #[allow(unsafe_code)]
        unsafe {
            let vec = text.as_mut_vec();
            let end = vec.len();
            let to = vec.as_mut_ptr().add(end);
            let from = bytes.as_ptr();
            if len >= 8 {
                let head = from.cast::<u64>().read_unaligned();
                let tail = from.add(len - 8).cast::<u64>().read_unaligned();
                to.cast::<u64>().write_unaligned(head);
                to.add(len - 8).cast::<u64>().write_unaligned(tail);
            } else {
                let head = from.cast::<u32>().read_unaligned();
                let tail = from.add(len - 4).cast::<u32>().read_unaligned();
                to.cast::<u32>().write_unaligned(head);
                to.add(len - 4).cast::<u32>().write_unaligned(tail);
            }
            vec.set_len(end + len);
        }
    }

    /// `value.to_string()`, copied as [`append_short`] copies.
    #[inline]
    pub(crate) fn copy_short(value: &str) -> String {
        let mut copy = String::with_capacity(value.len());
        append_short(&mut copy, value);
        copy
    }

    /// Room for the strings of this many results, guessed so that a
    /// typical batch grows its text once or not at all.
    fn text_capacity(results: usize) -> usize {
        results.saturating_mul(96)
    }

    /// Packs a batch's score cards as `score` returns them (contract 0.6):
    /// each card's score, band and factors as positions among the declared
    /// ones, each factor's note into the text.
    pub struct CardPacker {
        packed: PackedScoreCards,
        declared: &'static DeclaredScore,
    }

    impl CardPacker {
        /// A packer for `len` results of a scorer that declares `declared`.
        pub fn new(len: usize, declared: &'static DeclaredScore) -> Self {
            Self {
                packed: PackedScoreCards {
                    text: String::with_capacity(text_capacity(len)),
                    results: Vec::with_capacity(len),
                    factors: Vec::with_capacity(len.saturating_mul(8)),
                },
                declared,
            }
        }

        /// Adds the next context's result.
        pub fn push(&mut self, result: Result<ScoreCard, PluginError>) {
            let declared = self.declared;
            let packed = &mut self.packed;
            let first = packed.factors.len();
            let text = packed.text.len();
            let result = result
                .and_then(|card| pack_card(&mut packed.text, &mut packed.factors, declared, &card));
            if result.is_err() {
                // An item that fails leaves nothing of its card behind.
                packed.factors.truncate(first);
                packed.text.truncate(text);
            }
            packed.results.push(result);
        }

        /// The packed results.
        pub fn finish(self) -> PackedScoreCards {
            self.packed
        }
    }

    /// Packs `card` of the declared score `declared`: its score, band and
    /// factors as positions among the declared ones, its factors into
    /// `factors` and their notes into `text`. A name not declared, or a
    /// factor listed twice, is the item's error (what was packed of the
    /// card is left for the caller to take back).
    fn pack_card(
        text: &mut String,
        factors: &mut Vec<PackedFactor>,
        declared: &DeclaredScore,
        card: &ScoreCard,
    ) -> Result<PackedScoreCard, PluginError> {
        if !same_name(declared.name, &card.name) {
            return Err(undeclared("score", &card.name, "score"));
        }
        let band = find_name(declared.bands, &card.band, 0)
            .ok_or_else(|| undeclared("band", &card.band, "bands"))?;
        let first = factors.len();
        // Where the factor after the last one found would be: a scorer
        // usually lists its factors in the declared order.
        let mut next = 0;
        // The factors listed so far, by position (at most 64 are
        // declared): the contract lists each at most once.
        let mut listed = 0u64;
        for factor in &card.factors {
            let at = find_name(declared.factors, &factor.name, next)
                .ok_or_else(|| undeclared("factor", &factor.name, "factors"))?;
            let bit = 1u64.checked_shl(position(at)).unwrap_or(0);
            if listed & bit != 0 {
                return Err(listed_twice(&factor.name));
            }
            listed |= bit;
            next = at + 1;
            factors.push(PackedFactor {
                factor: position(at),
                weight: factor.weight,
                raw: factor.raw,
                value: factor.value,
                contribution: factor.contribution,
                note: push_text(text, &factor.note),
            });
        }
        Ok(PackedScoreCard {
            score: 0,
            value: card.value,
            band: position(band),
            rag: card.rag,
            factors: span(first, card.factors.len()),
        })
    }

    /// What a ruleset's rules give for one event: its card, its signals
    /// and its verdict on each.
    pub type Ruled = (ScoreCard, Vec<Signal>, Vec<Verdict>);

    /// The verdict that stands for a ruleset's `check` failing on a
    /// signal: the signal does not apply (a failing condition is fail
    /// closed too), and the reason says why, so the card and the event's
    /// other signals stand.
    pub fn failed_check(error: &PluginError) -> Verdict {
        let (kind, message) = match error {
            PluginError::InvalidInput(message) => ("invalid-input", message),
            PluginError::InvalidConfig(message) => ("invalid-config", message),
            PluginError::InsufficientData(message) => ("insufficient-data", message),
            PluginError::Internal(message) => ("internal", message),
        };
        Verdict {
            applies: false,
            reason: format!("check failed ({kind}): {message}"),
            policy_tags: Vec::new(),
        }
    }

    /// Packs a batch's rulings as `rule` returns them (contract 0.7): each
    /// event's card as [`CardPacker`] packs one, its signals as
    /// [`SignalPacker`] does and its verdicts as [`VerdictPacker`] does.
    pub struct RulingPacker {
        packed: PackedRulings,
        score: &'static DeclaredScore,
        tags: &'static [&'static str],
    }

    impl RulingPacker {
        /// A packer for `len` results of a ruleset that declares the score
        /// `score` and the policy tags `tags`.
        pub fn new(
            len: usize,
            score: &'static DeclaredScore,
            tags: &'static [&'static str],
        ) -> Self {
            Self {
                packed: PackedRulings {
                    text: String::with_capacity(text_capacity(len)),
                    results: Vec::with_capacity(len),
                    cards: Vec::with_capacity(len),
                    factors: Vec::with_capacity(len.saturating_mul(8)),
                    signals: Vec::new(),
                    verdicts: Vec::new(),
                },
                score,
                tags,
            }
        }

        /// Adds the next context's result.
        pub fn push(&mut self, result: Result<Ruled, PluginError>) {
            let packed = &mut self.packed;
            let marks = (
                packed.text.len(),
                packed.cards.len(),
                packed.factors.len(),
                packed.signals.len(),
                packed.verdicts.len(),
            );
            let result = result.and_then(|(card, signals, verdicts)| {
                let card = pack_card(&mut packed.text, &mut packed.factors, self.score, &card)?;
                packed.cards.push(card);
                for (signal, verdict) in signals.iter().zip(&verdicts) {
                    let signal = pack_signal(&mut packed.text, signal);
                    packed.signals.push(signal);
                    let verdict = PackedVerdict {
                        applies: verdict.applies,
                        reason: push_text(&mut packed.text, &verdict.reason),
                        policy_tags: tag_bits(self.tags, &verdict.policy_tags)?,
                    };
                    packed.verdicts.push(verdict);
                }
                Ok(PackedRuling {
                    cards: span(marks.1, 1),
                    signals: span(marks.3, packed.signals.len() - marks.3),
                })
            });
            if result.is_err() {
                // An item that fails leaves nothing of its ruling behind.
                packed.text.truncate(marks.0);
                packed.cards.truncate(marks.1);
                packed.factors.truncate(marks.2);
                packed.signals.truncate(marks.3);
                packed.verdicts.truncate(marks.4);
            }
            packed.results.push(result);
        }

        /// The packed results.
        pub fn finish(self) -> PackedRulings {
            self.packed
        }
    }

    /// The error for a card that lists a factor twice.
    #[cold]
    #[inline(never)]
    fn listed_twice(name: &str) -> PluginError {
        PluginError::Internal(format!("factor `{name}` is listed twice in one card"))
    }

    /// A position among at most 64 declared names, as the contract's `u32`.
    fn position(at: usize) -> u32 {
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    /// Whether `name` is the declared `declared`: the same literal (by
    /// address, see [`find_name`]) or the same bytes.
    #[inline]
    fn same_name(declared: &'static str, name: &str) -> bool {
        (declared.as_ptr() == name.as_ptr() && declared.len() == name.len()) || declared == name
    }

    /// The error for a card's score, band or factor (`what`) that the
    /// scorer does not declare in its `option`.
    #[cold]
    #[inline(never)]
    fn undeclared(what: &str, name: &str, option: &str) -> PluginError {
        PluginError::Internal(format!(
            "{what} `{name}` is not declared: add it to the `{option}` of #[vigil_sdk::scorer] or #[vigil_sdk::ruleset]"
        ))
    }

    /// Packs one signal's strings into `text`.
    fn pack_signal(text: &mut String, signal: &Signal) -> PackedSignal {
        PackedSignal {
            name: push_text(text, &signal.name),
            severity: signal.severity,
            reason: push_text(text, &signal.reason),
            dedup_key: push_text(text, &signal.dedup_key),
            cooldown_secs: signal.cooldown_secs,
        }
    }

    /// Packs a batch's signals as `evaluate` returns them (since contract
    /// 0.4).
    pub struct SignalPacker {
        packed: PackedSignals,
    }

    impl SignalPacker {
        /// A packer for `len` results.
        pub fn new(len: usize) -> Self {
            Self {
                packed: PackedSignals {
                    text: String::with_capacity(text_capacity(len)),
                    results: Vec::with_capacity(len),
                    signals: Vec::new(),
                },
            }
        }

        /// Adds the next context's result.
        pub fn push(&mut self, result: Result<Vec<Signal>, PluginError>) {
            let packed = &mut self.packed;
            let result = result.map(|signals| {
                let first = packed.signals.len();
                for signal in &signals {
                    let signal = pack_signal(&mut packed.text, signal);
                    packed.signals.push(signal);
                }
                span(first, signals.len())
            });
            packed.results.push(result);
        }

        /// The packed results.
        pub fn finish(self) -> PackedSignals {
            self.packed
        }
    }

    /// Packs a batch's verdicts as `check` returns them (since contract
    /// 0.5):
    /// each verdict's tags as bits of the declared tags.
    pub struct VerdictPacker {
        packed: PackedVerdicts,
        declared: &'static [&'static str],
    }

    impl VerdictPacker {
        /// A packer for `len` results of a plugin that declares the
        /// policy tags `declared` (at most 64, which the macros check; a
        /// tag past the 64th is an error for its item).
        pub fn new(len: usize, declared: &'static [&'static str]) -> Self {
            debug_assert!(declared.len() <= 64, "at most 64 declared tags");
            Self {
                packed: PackedVerdicts {
                    text: String::with_capacity(text_capacity(len)),
                    results: Vec::with_capacity(len),
                },
                declared,
            }
        }

        /// Adds the next item's result.
        pub fn push(&mut self, result: Result<Verdict, PluginError>) {
            let packed = &mut self.packed;
            let declared = self.declared;
            let result = result.and_then(|verdict| {
                let policy_tags = tag_bits(declared, &verdict.policy_tags)?;
                Ok(PackedVerdict {
                    applies: verdict.applies,
                    reason: push_text(&mut packed.text, &verdict.reason),
                    policy_tags,
                })
            });
            packed.results.push(result);
        }

        /// The packed results.
        pub fn finish(self) -> PackedVerdicts {
            self.packed
        }
    }

    /// `tags` as bits of `declared`: bit `i` for `declared[i]`. A tag not
    /// declared is the item's error.
    #[inline]
    pub fn tag_bits(declared: &[&'static str], tags: &[crate::Tag]) -> Result<u64, PluginError> {
        let mut bits = 0u64;
        // Where the tag after the last one found would be: a plugin
        // usually gives its tags in the order it declares them.
        let mut next = 0;
        for tag in tags {
            let at = find_name(declared, tag, next).ok_or_else(|| undeclared_tag(tag))?;
            // A verdict names at most 64 declared tags, one bit each.
            let bit = u32::try_from(at)
                .ok()
                .and_then(|at| 1u64.checked_shl(at).filter(|_| at < 64))
                .ok_or_else(|| undeclared_tag(tag))?;
            bits |= bit;
            next = at + 1;
        }
        Ok(bits)
    }

    /// Where `tag` (a policy tag, a band, a factor's name) is among
    /// `declared`. A name written as a string literal is, once the plugin
    /// is built (one codegen unit, LTO), the same bytes in memory as the
    /// declared literal, so it is looked for by address first, from `from`
    /// on and then from the start: a name in declared order is found at
    /// the first comparison, with no bytes compared. Any other string is
    /// looked for by its bytes.
    #[inline]
    fn find_name(declared: &[&'static str], tag: &str, from: usize) -> Option<usize> {
        let (before, after) = declared.split_at(from.min(declared.len()));
        let same = |name: &&str| name.as_ptr() == tag.as_ptr() && name.len() == tag.len();
        let equal = |name: &&str| *name == tag;
        after
            .iter()
            .position(same)
            .map(|at| before.len() + at)
            .or_else(|| before.iter().position(same))
            .or_else(|| after.iter().position(equal).map(|at| before.len() + at))
            .or_else(|| before.iter().position(equal))
    }

    /// The error for a verdict's tag that the plugin does not declare.
    #[cold]
    #[inline(never)]
    fn undeclared_tag(tag: &str) -> PluginError {
        PluginError::Internal(format!(
            "policy tag `{tag}` is not declared: add it to the `tags` of #[vigil_sdk::condition], #[vigil_sdk::playbook] or #[vigil_sdk::ruleset]"
        ))
    }

    /// Unpacks the signals of a `check` call (since contract 0.4) one at a time,
    /// into one `Signal` whose strings are reused from one to the next.
    pub struct CheckItems {
        packed: PackedCheckItems,
        signal: Signal,
    }

    impl CheckItems {
        /// The items of `packed`.
        pub fn new(packed: PackedCheckItems) -> Self {
            Self {
                packed,
                signal: Signal {
                    name: String::new(),
                    severity: crate::Severity::Info,
                    reason: String::new(),
                    dedup_key: String::new(),
                    cooldown_secs: 0,
                },
            }
        }

        /// How many items there are.
        pub fn len(&self) -> usize {
            self.packed.items.len()
        }

        /// Whether there is no item.
        pub fn is_empty(&self) -> bool {
            self.packed.items.is_empty()
        }

        /// Item `at`: its context's position in the batch and its signal.
        pub fn item(&mut self, at: usize) -> Result<(usize, &Signal), PluginError> {
            let Some(item) = self.packed.items.get(at) else {
                return Err(PluginError::InvalidInput(format!(
                    "item {at} is not in a batch of {}",
                    self.packed.items.len()
                )));
            };
            let text = &self.packed.text;
            let signal = &mut self.signal;
            refill(&mut signal.name, text_at(text, item.signal.name)?);
            signal.severity = item.signal.severity;
            refill(&mut signal.reason, text_at(text, item.signal.reason)?);
            refill(&mut signal.dedup_key, text_at(text, item.signal.dedup_key)?);
            signal.cooldown_secs = item.signal.cooldown_secs;
            let context = usize::try_from(item.context).unwrap_or(usize::MAX);
            Ok((context, &self.signal))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::wit::vigil::plugin::types::{PackedAttribute, PackedContext, PackedScore};
        use crate::{Industry, Rag, Tag, Tier};

        #[test]
        fn a_tag_is_found_by_address_in_declared_order_by_bytes_otherwise_and_only_among_the_first_64()
         {
            static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
                (0..65)
                    .map(|n| &*Box::leak(format!("tag-{n}").into_boxed_str()))
                    .collect()
            });
            let declared: &'static [&'static str] = NAMES.as_slice();
            // The declared literals themselves: found by address.
            let same: Vec<Tag> = [0, 31, 32, 63]
                .iter()
                .map(|&at| Tag::Borrowed(declared[at]))
                .collect();
            assert_eq!(
                tag_bits(&declared[..64], &same),
                Ok(1 | 1 << 31 | 1 << 32 | 1 << 63)
            );
            // Equal bytes elsewhere in memory, and out of declared order.
            let copies: Vec<Tag> = vec![Tag::Owned("tag-40".into()), Tag::Owned("tag-2".into())];
            assert_eq!(tag_bits(&declared[..64], &copies), Ok(1 << 40 | 1 << 2));
            // A 65th declared tag has no bit: an error, never a lost tag.
            let past = [Tag::Borrowed(declared[64])];
            assert!(matches!(
                tag_bits(declared, &past),
                Err(PluginError::Internal(message)) if message.contains("`tag-64`")
            ));
        }

        /// A health score with its bands and two factors.
        static HEALTH: DeclaredScore = DeclaredScore {
            name: "health",
            bands: &crate::HEALTH_BANDS,
            factors: &["usage", "login-trend"],
        };

        fn card(band: &'static str, factors: &[(&'static str, &'static str)]) -> ScoreCard {
            ScoreCard {
                name: "health".into(),
                value: 60.0,
                band: band.into(),
                rag: Rag::Yellow,
                factors: factors
                    .iter()
                    .map(|(name, note)| crate::Factor {
                        name: Cow::Borrowed(*name),
                        weight: 0.5,
                        raw: 1.0,
                        value: 60.0,
                        contribution: 30.0,
                        note: Cow::Borrowed(*note),
                    })
                    .collect(),
            }
        }

        #[test]
        fn a_card_is_packed_as_positions_of_the_declared_score_with_its_notes_as_text() {
            let mut packer = CardPacker::new(2, &HEALTH);
            packer.push(Ok(card(
                "stable",
                &[("login-trend", "up"), ("usage", "half")],
            )));
            // Names built at run time are found by their bytes.
            let mut owned = card("optimal", &[]);
            owned.name = Cow::Owned("health".to_string());
            owned.band = Cow::Owned("optimal".to_string());
            packer.push(Ok(owned));
            let packed = packer.finish();
            let Ok(first) = &packed.results[0] else {
                panic!("{:?}", packed.results[0]);
            };
            assert_eq!((first.score, first.band), (0, 2));
            assert_eq!((first.factors.start, first.factors.len), (0, 2));
            let factors: Vec<(u32, &str)> = packed
                .factors
                .iter()
                .map(|f| (f.factor, text_at(&packed.text, f.note).unwrap()))
                .collect();
            assert_eq!(factors, [(1, "up"), (0, "half")]);
            let Ok(second) = &packed.results[1] else {
                panic!("{:?}", packed.results[1]);
            };
            assert_eq!((second.score, second.band, second.factors.len), (0, 3, 0));
        }

        #[test]
        fn an_undeclared_score_band_or_factor_or_one_listed_twice_is_its_items_error_and_leaves_nothing_packed()
         {
            let mut packer = CardPacker::new(5, &HEALTH);
            let mut lead = card("stable", &[]);
            lead.name = "lead".into();
            packer.push(Ok(lead));
            packer.push(Ok(card("hot", &[])));
            // The first factor is declared, the second is not.
            packer.push(Ok(card(
                "stable",
                &[("usage", "packed first"), ("fit", "never")],
            )));
            packer.push(Ok(card("stable", &[("usage", "a"), ("usage", "b")])));
            packer.push(Ok(card("stable", &[("usage", "kept")])));
            let packed = packer.finish();
            let message = |at: usize| match &packed.results[at] {
                Err(PluginError::Internal(message)) => message.clone(),
                other => panic!("expected an error, got {other:?}"),
            };
            for (at, expected) in [
                (0, "score `lead` is not declared"),
                (1, "band `hot` is not declared"),
                (2, "factor `fit` is not declared: add it to the `factors`"),
                (3, "factor `usage` is listed twice"),
            ] {
                assert!(message(at).contains(expected), "{}", message(at));
            }
            // Only the last card's factor and note are left.
            assert_eq!(packed.factors.len(), 1);
            assert_eq!(packed.text, "kept");
            let Ok(last) = &packed.results[4] else {
                panic!("{:?}", packed.results[4]);
            };
            assert_eq!((last.factors.start, last.factors.len), (0, 1));
        }

        #[test]
        fn a_verdicts_tags_are_packed_as_bits_of_the_declared_tags() {
            const DECLARED: &[&str] = &["sox", "hipaa", "audit-trail"];
            let tags: Vec<Tag> = vec!["audit-trail".into(), Tag::Owned("sox".into())];
            assert_eq!(tag_bits(DECLARED, &tags), Ok(0b101));
            assert_eq!(tag_bits(DECLARED, &[]), Ok(0));
            let mut packer = VerdictPacker::new(2, DECLARED);
            packer.push(Ok(Verdict {
                applies: true,
                reason: "ok".into(),
                policy_tags: vec!["hipaa".into()],
            }));
            packer.push(Ok(Verdict {
                applies: false,
                reason: "no".into(),
                policy_tags: vec!["pci-dss".into()],
            }));
            let packed = packer.finish();
            match &packed.results[0] {
                Ok(verdict) => assert_eq!(verdict.policy_tags, 0b010),
                Err(error) => panic!("{error:?}"),
            }
            match &packed.results[1] {
                Err(PluginError::Internal(message)) => {
                    assert!(message.contains("`pci-dss` is not declared"), "{message}")
                }
                other => panic!("expected the undeclared tag refused, got {other:?}"),
            }
        }
        fn signal(name: &str) -> Signal {
            Signal {
                name: name.into(),
                severity: crate::Severity::High,
                reason: "why".into(),
                dedup_key: name.into(),
                cooldown_secs: 0,
            }
        }

        fn verdict(applies: bool, tags: &[&'static str]) -> Verdict {
            Verdict {
                applies,
                reason: if applies { "yes" } else { "no" }.into(),
                policy_tags: tags.iter().map(|tag| Tag::Borrowed(*tag)).collect(),
            }
        }

        #[test]
        fn a_ruling_packs_its_card_its_signals_and_a_verdict_on_each_one_for_one() {
            const TAGS: &[&str] = &["sox", "hipaa"];
            let mut packer = RulingPacker::new(2, &HEALTH, TAGS);
            packer.push(Ok((
                card("stable", &[("usage", "half")]),
                vec![signal("a"), signal("b")],
                vec![verdict(true, &["hipaa"]), verdict(false, &[])],
            )));
            packer.push(Ok((
                card("optimal", &[]),
                vec![signal("c")],
                vec![verdict(true, &["sox"])],
            )));
            let packed = packer.finish();
            let spans: Vec<(u32, u32, u32, u32)> = packed
                .results
                .iter()
                .map(|result| match result {
                    Ok(ruling) => (
                        ruling.cards.start,
                        ruling.cards.len,
                        ruling.signals.start,
                        ruling.signals.len,
                    ),
                    Err(error) => panic!("{error:?}"),
                })
                .collect();
            assert_eq!(spans, [(0, 1, 0, 2), (1, 1, 2, 1)]);
            assert_eq!(packed.cards.len(), 2);
            assert_eq!((packed.cards[0].band, packed.cards[1].band), (2, 3));
            assert_eq!(packed.factors.len(), 1);
            let signals: Vec<&str> = packed
                .signals
                .iter()
                .map(|s| text_at(&packed.text, s.name).unwrap())
                .collect();
            assert_eq!(signals, ["a", "b", "c"]);
            let verdicts: Vec<(bool, u64, &str)> = packed
                .verdicts
                .iter()
                .map(|v| {
                    (
                        v.applies,
                        v.policy_tags,
                        text_at(&packed.text, v.reason).unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                verdicts,
                [(true, 0b10, "yes"), (false, 0, "no"), (true, 0b01, "yes")]
            );
        }

        #[test]
        fn a_failed_check_is_a_verdict_that_the_signal_does_not_apply_saying_why() {
            let verdict = failed_check(&PluginError::InsufficientData("no tier".into()));
            assert!(!verdict.applies);
            assert_eq!(verdict.reason, "check failed (insufficient-data): no tier");
            assert!(verdict.policy_tags.is_empty());
        }

        #[test]
        fn text_appended_is_the_values_bytes_whatever_their_length_and_wherever_the_text_ends() {
            // Every length on both sides of the short copies' bounds (4, 8
            // and 16 bytes), characters of several bytes among them, after
            // texts with and without room left.
            let values: Vec<String> = (0..=24)
                .map(|len| "abcdefghijklmnopqrstuvwxyz"[..len].to_string())
                .chain(["é", "ab€", "naïve", "日本語の", "€€€€€", "a😀b😀c"].map(String::from))
                .collect();
            for before in ["", "x", "seven b", "exactly sixteen!"] {
                for value in &values {
                    let mut tight = String::from(before);
                    tight.shrink_to_fit();
                    let mut roomy = String::with_capacity(64);
                    roomy.push_str(before);
                    for text in [&mut tight, &mut roomy] {
                        let span = push_text(text, value);
                        assert_eq!(*text, format!("{before}{value}"));
                        assert_eq!(
                            (span.start as usize, span.len as usize),
                            (before.len(), value.len())
                        );
                    }
                }
            }
            let mut target = String::from("an older, longer value");
            refill(&mut target, "a new value");
            assert_eq!(target, "a new value");
            refill(&mut target, "new");
            assert_eq!(target, "new");
        }

        #[test]
        fn a_ruling_that_fails_anywhere_is_its_items_error_and_leaves_nothing_packed() {
            let mut packer = RulingPacker::new(4, &HEALTH, &["sox"]);
            packer.push(Ok((card("hot", &[]), vec![], vec![])));
            // The card and the first signal pack before the second
            // verdict's tag is found undeclared.
            packer.push(Ok((
                card("stable", &[("usage", "gone")]),
                vec![signal("a"), signal("b")],
                vec![verdict(true, &["sox"]), verdict(true, &["hipaa"])],
            )));
            packer.push(Err(PluginError::InsufficientData("no data".into())));
            packer.push(Ok((
                card("stable", &[]),
                vec![signal("kept")],
                vec![verdict(true, &[])],
            )));
            let packed = packer.finish();
            assert!(
                matches!(&packed.results[0], Err(PluginError::Internal(m)) if m.contains("band `hot`"))
            );
            assert!(
                matches!(&packed.results[1], Err(PluginError::Internal(m)) if m.contains("`hipaa` is not declared"))
            );
            assert!(matches!(
                &packed.results[2],
                Err(PluginError::InsufficientData(_))
            ));
            assert_eq!((packed.cards.len(), packed.factors.len()), (1, 0));
            assert_eq!((packed.signals.len(), packed.verdicts.len()), (1, 1));
            assert_eq!(packed.text, "keptwhykeptyes");
            let Ok(last) = &packed.results[3] else {
                panic!("{:?}", packed.results[3]);
            };
            assert_eq!(
                (last.cards.start, last.signals.start, last.signals.len),
                (0, 0, 1)
            );
        }

        /// A batch of one context, with `text` and the spans given.
        fn batch(text: &str, account_id: Span, attributes: Span) -> PackedContexts {
            let at = |start: u32, len: u32| Span { start, len };
            PackedContexts {
                text: text.to_string(),
                contexts: vec![PackedContext {
                    account_id,
                    account_name: at(4, 4),
                    tier: Tier::Enterprise,
                    industry: Industry::Healthcare,
                    licensed_seats: 10,
                    active_users: 7,
                    arr: 1200,
                    contract_start: Some(5),
                    renewal_date: None,
                    attributes,
                    event_id: at(8, 2),
                    event_account_id: at(0, 4),
                    event_kind: at(10, 6),
                    occurred_at: 42,
                    payload: at(16, 2),
                    now: 43,
                    scores: at(0, 1),
                }],
                attributes: vec![PackedAttribute {
                    key: at(18, 6),
                    value: at(24, 4),
                }],
                scores: vec![PackedScore {
                    name: at(28, 6),
                    value: 71.5,
                    band: at(34, 4),
                    rag: Rag::Green,
                }],
            }
        }

        const TEXT: &str = "a-01Acmee7logins{}regionemeahealthgood";

        #[test]
        fn a_packed_context_unpacks_into_the_context_it_stands_for() {
            let packed = batch(TEXT, Span { start: 0, len: 4 }, Span { start: 0, len: 1 });
            let mut unpacker = Unpacker::new(&packed);
            let ctx = unpacker.context(0).cloned();
            assert_eq!(
                ctx,
                Ok(Context {
                    account: Account {
                        id: "a-01".into(),
                        name: "Acme".into(),
                        tier: Tier::Enterprise,
                        industry: Industry::Healthcare,
                        licensed_seats: 10,
                        active_users: 7,
                        arr: 1200,
                        contract_start: Some(5),
                        renewal_date: None,
                        attributes: vec![Attribute {
                            key: "region".into(),
                            value: "emea".into(),
                        }],
                    },
                    event: Event {
                        id: "e7".into(),
                        account_id: "a-01".into(),
                        kind: "logins".into(),
                        occurred_at: 42,
                        payload: "{}".into(),
                    },
                    now: 43,
                    scores: vec![ScoreSummary {
                        name: "health".into(),
                        value: 71.5,
                        band: "good".into(),
                        rag: Rag::Green,
                    }],
                })
            );
        }

        #[test]
        fn an_unpacked_context_borrows_its_strings_from_the_batch_text() {
            let packed = batch(TEXT, Span { start: 0, len: 4 }, Span { start: 0, len: 1 });
            let text = packed.text.as_str();
            let in_text = |field: &Cow<'_, str>| match field {
                Cow::Borrowed(borrowed) => {
                    text.as_bytes().as_ptr_range().contains(&borrowed.as_ptr())
                }
                Cow::Owned(_) => false,
            };
            let mut unpacker = Unpacker::new(&packed);
            let Ok(ctx) = unpacker.context(0) else {
                panic!("the batch unpacks");
            };
            let account = &ctx.account;
            let event = &ctx.event;
            let attribute = &account.attributes[0];
            let score = &ctx.scores[0];
            for field in [
                &account.id,
                &account.name,
                &attribute.key,
                &attribute.value,
                &event.id,
                &event.account_id,
                &event.kind,
                &event.payload,
                &score.name,
                &score.band,
            ] {
                assert!(in_text(field), "{field:?} is a copy");
            }
        }

        #[test]
        fn the_next_context_replaces_the_last_one_entirely() {
            let mut packed = batch(TEXT, Span { start: 0, len: 4 }, Span { start: 0, len: 1 });
            let mut second = packed.contexts[0];
            second.account_name = Span { start: 24, len: 4 };
            second.attributes = Span { start: 0, len: 0 };
            second.scores = Span { start: 0, len: 0 };
            second.renewal_date = Some(99);
            packed.contexts.push(second);
            let mut unpacker = Unpacker::new(&packed);
            let first = unpacker.context(0).map(|ctx| ctx.account.attributes.len());
            assert_eq!(first, Ok(1));
            let Ok(ctx) = unpacker.context(1) else {
                panic!("the second context unpacks");
            };
            assert_eq!(ctx.account.name, "emea");
            assert_eq!(ctx.account.renewal_date, Some(99));
            assert!(ctx.account.attributes.is_empty());
            assert!(ctx.scores.is_empty());
        }

        #[test]
        fn a_scored_context_holds_the_card_among_its_scores_until_it_is_unpacked_again() {
            let packed = batch(TEXT, Span { start: 0, len: 4 }, Span { start: 0, len: 1 });
            let mut unpacker = Unpacker::new(&packed);
            assert_eq!(unpacker.context(0).map(|ctx| ctx.scores.len()), Ok(1));
            let ctx = unpacker.scored(&card("stable", &[]));
            let scores: Vec<(&str, f64, &str)> = ctx
                .scores
                .iter()
                .map(|s| (&*s.name, s.value, &*s.band))
                .collect();
            assert_eq!(
                scores,
                [("health", 71.5, "good"), ("health", 60.0, "stable")]
            );
            // The same context asked for again is unpacked afresh.
            assert_eq!(unpacker.context(0).map(|ctx| ctx.scores.len()), Ok(1));
        }

        #[test]
        fn a_span_outside_the_text_or_a_list_is_refused_with_its_range() {
            let outside_text = batch(TEXT, Span { start: 30, len: 20 }, Span { start: 0, len: 1 });
            let error = Unpacker::new(&outside_text).context(0).map(|_| ()).err();
            assert_eq!(
                error,
                Some(PluginError::InvalidInput(format!(
                    "text 30..50 is not in the batch's {} bytes",
                    TEXT.len()
                )))
            );
            let outside_list = batch(TEXT, Span { start: 0, len: 4 }, Span { start: 1, len: 1 });
            let error = Unpacker::new(&outside_list).context(0).map(|_| ()).err();
            assert_eq!(
                error,
                Some(PluginError::InvalidInput(
                    "attributes 1..2 are not in the batch's 1".into()
                ))
            );
        }

        #[test]
        fn a_span_that_cuts_a_character_in_two_is_refused() {
            let text = "é-01Acmee7logins{}regionemeahealthgood";
            let packed = batch(text, Span { start: 1, len: 3 }, Span { start: 0, len: 1 });
            let error = Unpacker::new(&packed).context(0).map(|_| ()).err();
            assert!(
                matches!(&error, Some(PluginError::InvalidInput(m)) if m.starts_with("text 1..4 ")),
                "{error:?}"
            );
        }
    }
}
