//! A loaded plugin: its checked component, what it says about itself, and
//! the calls into it, each contained under the runtime's limits.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, ComponentType, Func, Instance,
    InstancePre, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{AsContextMut, Engine, Store, StoreContextMut, Trap};

use super::bindings::types::{
    self as contract, Context, Intent, PluginError, PluginInfo, PluginKind,
};
use super::bindings::{
    CheckItem as ContractCheckItem, PlanItem as ContractPlanItem, WindowSpec, v0_1, v0_2, v0_3,
    v0_4, v0_5, v0_6, v0_7,
};
use super::lift::{Lifted, Rulings};
use super::lower::{Lowered, LoweredCheckItems, LoweredWindows, Packed, PackedPieces, lowered};
use super::output::{DeclaredCard, DeclaredRuling, DeclaredVerdict, PluginOutput};
use super::results::{
    CheckItem, DeclaredScore, PlanItem, Ruling, ScoreCard, Signal, Text, Verdict,
};
use super::state::{BatchItem, DeclaredWindows, ItemSpent, PluginState, STDERR_CAPTURE_BYTES};
use super::unpack::{self, MalformedResults};

/// Warm instances kept per plugin; more concurrent calls instantiate and
/// drop theirs, so the engine's pool is never exhausted by one plugin.
const MAX_POOLED_INSTANCES: usize = 16;
use super::{
    EPOCH_TICK, Limits, LoadError, Runtime, SUPPORTED_CONTRACTS, check_imports, split_version,
};
use crate::history::MetricHistory;

/// Whether calls reuse a warm instance or get a fresh one each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceMode {
    /// Reuse instances between calls (the pipeline's default). An instance
    /// is discarded after any trap, limit hit or rejected output.
    #[default]
    Warm,
    /// A fresh instance for every call — for a batch, every batch call:
    /// what a bit-exact replay uses, one event at a time.
    Fresh,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The plugin returned a result that passed the host's checks.
    Ok,
    /// The plugin returned a domain error.
    PluginError {
        /// `invalid-input`, `invalid-config`, `insufficient-data` or `internal`.
        kind: String,
        /// The plugin's message.
        message: String,
    },
    /// The call burned its whole fuel budget.
    OutOfFuel,
    /// The call ran past its wall-clock deadline.
    Timeout,
    /// The instance tried to grow its memory past the cap.
    MemoryLimit,
    /// The result was larger than the output cap.
    OutputTooLarge {
        /// Its size.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// The result failed the host's checks.
    InvalidOutput {
        /// What is wrong with it.
        reason: String,
    },
    /// The instance trapped (a panic, an `unreachable`, a bad access), or
    /// could not be instantiated.
    Trap {
        /// The trap, with what the guest wrote to stderr if anything.
        reason: String,
    },
}

impl Outcome {
    /// Whether the call produced a usable result.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// Whether the plugin misbehaved (trap or limit), as opposed to
    /// returning a domain error.
    pub fn is_fault(&self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::PluginError { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => write!(f, "ok"),
            Outcome::PluginError { kind, message } => write!(f, "plugin error ({kind}): {message}"),
            Outcome::OutOfFuel => write!(f, "out of fuel"),
            Outcome::Timeout => write!(f, "deadline exceeded"),
            Outcome::MemoryLimit => write!(f, "memory limit exceeded"),
            Outcome::OutputTooLarge { bytes, limit } => {
                write!(f, "output of {bytes} bytes exceeds the {limit}-byte cap")
            }
            Outcome::InvalidOutput { reason } => write!(f, "invalid output: {reason}"),
            Outcome::Trap { reason } => write!(f, "trap: {reason}"),
        }
    }
}

/// Which plugin version did something: its name, version and component
/// digest, as one pointer to names interned for the life of the process.
/// Copying one is copying a pointer: the plugin, each invocation record,
/// score and signal of it hold one (some nine an event in the pipeline),
/// and as a shared reference count they took some 3 % of an event's time
/// in atomic increments and decrements (BENCHMARKS.md, "What was made
/// faster", 2026-12-06 19:11).
///
/// The names of each distinct name, version and digest are kept once and
/// never freed: one entry, a few hundred bytes, per plugin version the
/// process has loaded (or tried to load) or read a stored score of, which
/// the plugins deployed bound, not the events or requests served.
#[derive(Debug, Clone, Copy)]
pub struct PluginRef(&'static PluginNames);

/// What a [`PluginRef`] names.
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PluginNames {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The component's SHA-256 digest.
    pub digest: String,
}

/// The names every [`PluginRef`] points to, each once.
static INTERNED_NAMES: LazyLock<Mutex<HashSet<&'static PluginNames>>> =
    LazyLock::new(Mutex::default);

impl PluginRef {
    /// A reference to the plugin `name` at `version` whose component has
    /// `digest`: the names already interned for these three, or else
    /// these, interned.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        digest: impl Into<String>,
    ) -> Self {
        let names = PluginNames {
            name: name.into(),
            version: version.into(),
            digest: digest.into(),
        };
        let mut interned = INTERNED_NAMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = interned.get(&names) {
            return Self(kept);
        }
        let kept: &'static PluginNames = Box::leak(Box::new(names));
        interned.insert(kept);
        Self(kept)
    }
}

/// Equal names are interned once, so two references name the same plugin
/// version exactly when they point to the same names.
impl PartialEq for PluginRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for PluginRef {}

impl std::ops::Deref for PluginRef {
    type Target = PluginNames;

    fn deref(&self) -> &PluginNames {
        self.0
    }
}

impl From<&Plugin> for PluginRef {
    fn from(plugin: &Plugin) -> Self {
        plugin.id
    }
}

impl Serialize for PluginRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// One call into one plugin, as recorded for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// The plugin version called (serialized as `plugin`, `version` and
    /// `digest` beside the other fields).
    pub plugin: PluginRef,
    /// The export called: `score`, `evaluate`, `check`, `plan`, `rule` or
    /// `describe`.
    pub call: &'static str,
    /// Fuel burned (deterministic: the cost of the call).
    pub fuel_used: u64,
    /// Wall-clock duration in microseconds.
    pub duration_us: u64,
    /// Log lines dropped over the log cap.
    pub logs_dropped: u32,
    /// How it ended.
    pub outcome: Outcome,
}

impl Serialize for InvocationRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The record as it is written: the plugin's names and the
        /// outcome's fields beside the call's.
        #[derive(Serialize)]
        struct Written<'a> {
            plugin: &'a str,
            version: &'a str,
            digest: &'a str,
            call: &'static str,
            fuel_used: u64,
            duration_us: u64,
            logs_dropped: u32,
            #[serde(flatten)]
            outcome: &'a Outcome,
        }
        Written {
            plugin: &self.plugin.name,
            version: &self.plugin.version,
            digest: &self.plugin.digest,
            call: self.call,
            fuel_used: self.fuel_used,
            duration_us: self.duration_us,
            logs_dropped: self.logs_dropped,
            outcome: &self.outcome,
        }
        .serialize(serializer)
    }
}

/// A call's result (present only when the outcome is `Ok`) and its record.
#[derive(Debug, Clone)]
pub struct Invocation<R> {
    /// The result, if the call succeeded and passed the checks.
    pub output: Option<R>,
    /// What happened.
    pub record: InvocationRecord,
}

/// What a call needs besides its arguments.
#[derive(Debug)]
pub struct CallInput<'a> {
    /// The evaluation time, which the plugin's clock reads.
    pub now: i64,
    /// The seed of the plugin's randomness for this call (unused for a
    /// plugin that does not draw randomness, `Plugin::draws_randomness`).
    pub seed: [u8; 32],
    /// The history of the account being evaluated, lent to the call.
    pub history: &'a mut MetricHistory,
}

/// What each context of a batch call needs besides the context itself.
#[derive(Debug, Clone, Copy)]
pub struct ItemInput {
    /// The evaluation time, which the plugin's clock reads.
    pub now: i64,
    /// The seed of the plugin's randomness for this context (unused for a
    /// plugin that does not draw randomness).
    pub seed: [u8; 32],
}

/// A batch's contexts, shared by every plugin one stage of the pipeline
/// calls on them. Plugins of contract 0.3 and later take them packed; they
/// are packed once, by the first such call, for all of them.
#[derive(Debug)]
pub struct BatchContexts<'a> {
    all: &'a [Context],
    /// The packing, once made; `None` when the batch cannot be packed
    /// (its text is too long), so that each call fails as it would alone.
    packed: OnceCell<Option<PackedPieces>>,
    /// The packing of the same contexts with other scores, to make this
    /// one's from ([`BatchContexts::rescored`]).
    rescoring: RefCell<Option<PackedPieces>>,
}

impl<'a> BatchContexts<'a> {
    /// The batch `all`, not packed yet.
    pub fn new(all: &'a [Context]) -> Self {
        Self {
            all,
            packed: OnceCell::new(),
            rescoring: RefCell::new(None),
        }
    }

    /// The batch `all`: the contexts of `before`'s packing (taken with
    /// [`BatchContexts::into_packing`]) but for their scores. When first
    /// asked for, it is packed from that packing, only the scores anew.
    pub(crate) fn rescored(all: &'a [Context], before: Option<PackedPieces>) -> Self {
        Self {
            all,
            packed: OnceCell::new(),
            rescoring: RefCell::new(before),
        }
    }

    /// The packing, if one was made.
    pub(crate) fn into_packing(self) -> Option<PackedPieces> {
        self.packed.into_inner().flatten()
    }

    /// The contexts.
    pub fn as_slice(&self) -> &'a [Context] {
        self.all
    }

    /// The contexts `range` as a packed argument: from the batch's one
    /// packing when it could be made.
    fn packed(&self, range: Range<usize>) -> wasmtime::Result<Packed<'_>> {
        let part = part(self.all, range.clone())?;
        Ok(
            match self.packed.get_or_init(|| {
                match self.rescoring.take() {
                    Some(before) => before.with_scores(self.all),
                    None => PackedPieces::new(self.all),
                }
                .ok()
            }) {
                Some(pieces) => Packed::Ready {
                    pieces,
                    start: range.start,
                    end: range.end,
                },
                None => Packed::Contexts(part),
            },
        )
    }
}

/// A batch call's contexts, with each one's input and its account's
/// history (lent to the call, in the same order).
#[derive(Debug)]
pub struct Batch<'a> {
    /// The contexts, one per event.
    pub contexts: &'a BatchContexts<'a>,
    /// Each context's evaluation time and seed.
    pub inputs: &'a [ItemInput],
    /// Each context's account history.
    pub histories: &'a mut [MetricHistory],
}

/// Which of `scoring`, `triggering`, `conditioning` and `planning` a
/// plugin of `kind` exports, in that order (a ruleset exports none of
/// them: its one export is `ruling`).
fn interfaces_of(kind: PluginKind) -> [bool; 4] {
    [
        matches!(kind, PluginKind::Scorer),
        matches!(kind, PluginKind::Trigger | PluginKind::Playbook),
        matches!(kind, PluginKind::Condition | PluginKind::Playbook),
        matches!(kind, PluginKind::Action | PluginKind::Playbook),
    ]
}

/// A contract 0.1 plugin's exports, found once at load (`GuestIndices`) or
/// looked up in one instance (`Guest`).
#[derive(Clone)]
struct Exports<M, S, T, C, P> {
    meta: M,
    scoring: Option<S>,
    triggering: Option<T>,
    conditioning: Option<C>,
    planning: Option<P>,
}

/// Finding and loading the exports of a contract version whose exports are
/// called through its generated bindings (0.1), over its generated modules.
macro_rules! contract_exports {
    ($version:ident, $indices:ident, $guests:ident) => {
        type $indices = Exports<
            $version::meta::GuestIndices,
            $version::scoring::GuestIndices,
            $version::triggering::GuestIndices,
            $version::conditioning::GuestIndices,
            $version::planning::GuestIndices,
        >;
        type $guests = Exports<
            $version::meta::Guest,
            $version::scoring::Guest,
            $version::triggering::Guest,
            $version::conditioning::Guest,
            $version::planning::Guest,
        >;

        impl $indices {
            fn find(kind: PluginKind, pre: &InstancePre<PluginState>) -> wasmtime::Result<Self> {
                let [scoring, triggering, conditioning, planning] = interfaces_of(kind);
                Ok(Self {
                    meta: $version::meta::GuestIndices::new(pre)?,
                    scoring: scoring
                        .then(|| $version::scoring::GuestIndices::new(pre))
                        .transpose()?,
                    triggering: triggering
                        .then(|| $version::triggering::GuestIndices::new(pre))
                        .transpose()?,
                    conditioning: conditioning
                        .then(|| $version::conditioning::GuestIndices::new(pre))
                        .transpose()?,
                    planning: planning
                        .then(|| $version::planning::GuestIndices::new(pre))
                        .transpose()?,
                })
            }

            fn load(
                &self,
                store: &mut Store<PluginState>,
                instance: &Instance,
            ) -> wasmtime::Result<$guests> {
                Ok(Exports {
                    meta: self.meta.load(&mut *store, instance)?,
                    scoring: self
                        .scoring
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    triggering: self
                        .triggering
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    conditioning: self
                        .conditioning
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    planning: self
                        .planning
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                })
            }
        }
    };
}

contract_exports!(v0_1, IndicesV1, GuestsV1);

/// A batching plugin's `meta`, by contract version: 0.3's and 0.4's
/// `plugin-info` also declare history windows, 0.5's policy tags too, 0.6's
/// scores too.
#[derive(Clone)]
enum MetaIndices {
    V2(v0_2::meta::GuestIndices),
    V3(v0_3::meta::GuestIndices),
    V4(v0_4::meta::GuestIndices),
    V5(v0_5::meta::GuestIndices),
    V6(v0_6::meta::GuestIndices),
    V7(v0_7::meta::GuestIndices),
}

/// `meta` in one instance.
enum MetaGuest {
    V2(v0_2::meta::Guest),
    V3(v0_3::meta::Guest),
    V4(v0_4::meta::Guest),
    V5(v0_5::meta::Guest),
    V6(v0_6::meta::Guest),
    V7(v0_7::meta::Guest),
}

/// A batching plugin's exports (contract 0.2 and later), found once at
/// load: `meta` through its generated bindings, the batch exports by index
/// (they are called with contexts the host lowers itself, not through the
/// bindings).
#[derive(Clone)]
struct IndicesV2 {
    meta: MetaIndices,
    batch: BatchIndices,
}

impl IndicesV2 {
    fn find(
        kind: PluginKind,
        component: &Component,
        version: &str,
        pre: &InstancePre<PluginState>,
    ) -> wasmtime::Result<Self> {
        let meta = match version {
            "0.2.0" => MetaIndices::V2(v0_2::meta::GuestIndices::new(pre)?),
            "0.3.0" => MetaIndices::V3(v0_3::meta::GuestIndices::new(pre)?),
            "0.4.0" => MetaIndices::V4(v0_4::meta::GuestIndices::new(pre)?),
            "0.5.0" => MetaIndices::V5(v0_5::meta::GuestIndices::new(pre)?),
            "0.6.0" => MetaIndices::V6(v0_6::meta::GuestIndices::new(pre)?),
            _ => MetaIndices::V7(v0_7::meta::GuestIndices::new(pre)?),
        };
        Ok(Self {
            meta,
            batch: BatchIndices::find(kind, component, version)?,
        })
    }

    fn load(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
    ) -> wasmtime::Result<GuestsV2> {
        let meta = match &self.meta {
            MetaIndices::V2(meta) => MetaGuest::V2(meta.load(&mut *store, instance)?),
            MetaIndices::V3(meta) => MetaGuest::V3(meta.load(&mut *store, instance)?),
            MetaIndices::V4(meta) => MetaGuest::V4(meta.load(&mut *store, instance)?),
            MetaIndices::V5(meta) => MetaGuest::V5(meta.load(&mut *store, instance)?),
            MetaIndices::V6(meta) => MetaGuest::V6(meta.load(&mut *store, instance)?),
            MetaIndices::V7(meta) => MetaGuest::V7(meta.load(&mut *store, instance)?),
        };
        Ok(GuestsV2 {
            meta,
            batch: self.batch.load(store, instance)?,
        })
    }
}

/// A batching plugin's exports in one instance.
struct GuestsV2 {
    meta: MetaGuest,
    batch: BatchFuncs,
}

/// The exports of a component, by the contract version it targets.
#[derive(Clone)]
enum Indices {
    /// Contract 0.1: one event per call.
    V1(IndicesV1),
    /// Contract 0.2 and later: a batch per call.
    V2(IndicesV2),
}

/// The typed exports of one instance.
enum Guests {
    V1(GuestsV1),
    V2(GuestsV2),
}

impl Guests {
    fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Described> {
        Ok(match self {
            Guests::V1(guests) => guests.meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V2(meta),
                ..
            }) => meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V3(meta),
                ..
            }) => meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V4(meta),
                ..
            }) => meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V5(meta),
                ..
            }) => meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V6(meta),
                ..
            }) => meta.call_describe(store)?.into(),
            Guests::V2(GuestsV2 {
                meta: MetaGuest::V7(meta),
                ..
            }) => meta.call_describe(store)?.into(),
        })
    }
}

/// What `describe` says: the plugin's info, the history windows it
/// declares (contract 0.3 and later; none before), the policy tags its
/// verdicts may carry (contract 0.5 and later; none before) and the scores
/// it computes (contract 0.6 and later; none before).
struct Described {
    info: PluginInfo,
    windows: Vec<WindowSpec>,
    policy_tags: Vec<String>,
    scores: Vec<DeclaredScore>,
}

/// The most history windows a plugin may declare: each is computed for
/// every item the plugin evaluates.
pub const MAX_DECLARED_WINDOWS: usize = 64;

/// The longest metric name a declared window may have, in bytes.
pub const MAX_WINDOW_METRIC_BYTES: usize = 256;

/// The most policy tags a plugin may declare (contract 0.5): a packed
/// verdict names them by the bits of a `u64`.
pub const MAX_DECLARED_POLICY_TAGS: usize = 64;

/// The most scores a scorer may declare (contract 0.6).
pub const MAX_DECLARED_SCORES: usize = 16;

/// The most bands, and the most factors, a declared score may have
/// (contract 0.6).
pub const MAX_DECLARED_BANDS_OR_FACTORS: usize = 64;

/// `$version`'s plugin kinds as the host's: the five of 0.1 to 0.6, and
/// the `$more` a later version adds (0.7's `Ruleset`).
macro_rules! kind_from {
    ($version:ident $(, $more:ident)*) => {
        impl From<$version::vigil::plugin::types::PluginKind> for PluginKind {
            fn from(kind: $version::vigil::plugin::types::PluginKind) -> Self {
                use $version::vigil::plugin::types::PluginKind as Kind;
                match kind {
                    Kind::Scorer => PluginKind::Scorer,
                    Kind::Trigger => PluginKind::Trigger,
                    Kind::Condition => PluginKind::Condition,
                    Kind::Action => PluginKind::Action,
                    Kind::Playbook => PluginKind::Playbook,
                    $(Kind::$more => PluginKind::$more,)*
                }
            }
        }
    };
}

kind_from!(v0_1);
kind_from!(v0_3);
kind_from!(v0_4);
kind_from!(v0_5);
kind_from!(v0_6);
kind_from!(v0_7, Ruleset);

/// Contract 0.1's and 0.2's `plugin-info` (0.2 uses 0.1's types), which
/// declares nothing beside it.
impl From<v0_1::vigil::plugin::types::PluginInfo> for Described {
    fn from(info: v0_1::vigil::plugin::types::PluginInfo) -> Self {
        Self {
            info: PluginInfo {
                name: info.name,
                version: info.version,
                kind: info.kind.into(),
                description: info.description,
                subscribes: info.subscribes,
                config_schema: info.config_schema,
                default_fuel: info.default_fuel,
            },
            windows: Vec::new(),
            policy_tags: Vec::new(),
            scores: Vec::new(),
        }
    }
}

/// `plugin-info` of a contract version that declares windows (0.3 and
/// later, the same record in each but for 0.5's declared policy tags,
/// 0.6's declared scores and 0.7's `ruleset` kind), converted: `$tags` takes the tags out of the
/// version's record, `$scores` the scores.
macro_rules! described_from {
    ($version:ident, $tags:expr) => {
        described_from!($version, $tags, |_| Vec::new());
    };
    ($version:ident, $tags:expr, $scores:expr) => {
        impl From<$version::vigil::plugin::types::PluginInfo> for Described {
            fn from(info: $version::vigil::plugin::types::PluginInfo) -> Self {
                let tags: fn(&mut $version::vigil::plugin::types::PluginInfo) -> Vec<String> =
                    $tags;
                let scores: fn(
                    &mut $version::vigil::plugin::types::PluginInfo,
                ) -> Vec<DeclaredScore> = $scores;
                let mut info = info;
                let policy_tags = tags(&mut info);
                let scores = scores(&mut info);
                let kind = PluginKind::from(info.kind);
                Self {
                    info: PluginInfo {
                        name: info.name,
                        version: info.version,
                        kind,
                        description: info.description,
                        subscribes: info.subscribes,
                        config_schema: info.config_schema,
                        default_fuel: info.default_fuel,
                    },
                    windows: info
                        .windows
                        .into_iter()
                        .map(|window| WindowSpec {
                            metric: window.metric,
                            days: window.days,
                            offset_days: window.offset_days,
                        })
                        .collect(),
                    policy_tags,
                    scores,
                }
            }
        }
    };
}

described_from!(v0_3, |_| Vec::new());
described_from!(v0_4, |_| Vec::new());
described_from!(v0_5, |info| std::mem::take(&mut info.policy_tags));
/// The scores a 0.6 or later `plugin-info` declares, as the host keeps
/// them.
macro_rules! declared_scores {
    ($scores:expr) => {{
        let texts = |names: Vec<String>| names.iter().map(|name| Text::new(name)).collect();
        $scores
            .into_iter()
            .map(|score| DeclaredScore {
                name: Text::new(&score.name),
                bands: texts(score.bands),
                factors: texts(score.factors),
            })
            .collect()
    }};
}

described_from!(v0_6, |info| std::mem::take(&mut info.policy_tags), |info| {
    declared_scores!(std::mem::take(&mut info.scores))
});
described_from!(v0_7, |info| std::mem::take(&mut info.policy_tags), |info| {
    declared_scores!(std::mem::take(&mut info.scores))
});

impl PluginOutput for Described {
    fn size(&self) -> usize {
        self.info.size()
            + self
                .windows
                .iter()
                .map(|window| window.metric.len() + 8)
                .sum::<usize>()
            + self
                .policy_tags
                .iter()
                .map(|tag| tag.len() + 4)
                .sum::<usize>()
        // The declared scores are left out: their own limits bound them
        // (16 scores of a name and 64 bands and 64 factors, each at most
        // 128 bytes: some 270 KB), and the largest a plugin may declare
        // would not fit the default output limit.
    }

    fn validate(&self) -> Result<(), String> {
        self.info.validate()?;
        if self.windows.len() > MAX_DECLARED_WINDOWS {
            return Err(format!(
                "declares {} history windows; at most {MAX_DECLARED_WINDOWS}",
                self.windows.len()
            ));
        }
        for window in &self.windows {
            if window.metric.is_empty() || window.metric.len() > MAX_WINDOW_METRIC_BYTES {
                return Err(format!(
                    "declares a history window of the metric `{}`; a metric name is 1–{MAX_WINDOW_METRIC_BYTES} bytes",
                    window.metric
                ));
            }
        }
        self.validate_scores()?;
        if self.policy_tags.is_empty() {
            return Ok(());
        }
        if !matches!(
            self.info.kind,
            PluginKind::Condition | PluginKind::Playbook | PluginKind::Ruleset
        ) {
            return Err(format!(
                "declares policy tags, but only conditions, playbooks and rulesets return verdicts; this {} may declare none",
                kind_name(self.info.kind)
            ));
        }
        if self.policy_tags.len() > MAX_DECLARED_POLICY_TAGS {
            return Err(format!(
                "declares {} policy tags; at most {MAX_DECLARED_POLICY_TAGS}",
                self.policy_tags.len()
            ));
        }
        for (at, tag) in self.policy_tags.iter().enumerate() {
            super::output::check_name("a declared policy tag", tag)?;
            if self.policy_tags[..at].contains(tag) {
                return Err(format!("declares the policy tag `{tag}` twice"));
            }
        }
        Ok(())
    }
}

impl Described {
    /// Checks the declared scores (contract 0.6): only a scorer or a
    /// ruleset declares any; at most 16, none named twice; each with 1 to 64 bands and at
    /// most 64 factors, every name a valid name and none twice in its list.
    fn validate_scores(&self) -> Result<(), String> {
        if self.scores.is_empty() {
            return Ok(());
        }
        if !matches!(self.info.kind, PluginKind::Scorer | PluginKind::Ruleset) {
            return Err(format!(
                "declares scores, but only scorers and rulesets return score cards; this {} may declare none",
                kind_name(self.info.kind)
            ));
        }
        if self.scores.len() > MAX_DECLARED_SCORES {
            return Err(format!(
                "declares {} scores; at most {MAX_DECLARED_SCORES}",
                self.scores.len()
            ));
        }
        for (at, score) in self.scores.iter().enumerate() {
            super::output::check_name("a declared score", &score.name)?;
            if self.scores[..at].iter().any(|s| s.name == score.name) {
                return Err(format!("declares the score `{}` twice", score.name));
            }
            if score.bands.is_empty() {
                return Err(format!("declares the score `{}` with no band", score.name));
            }
            for (what, names) in [("band", &score.bands), ("factor", &score.factors)] {
                if names.len() > MAX_DECLARED_BANDS_OR_FACTORS {
                    return Err(format!(
                        "declares {} {what}s for the score `{}`; at most {MAX_DECLARED_BANDS_OR_FACTORS}",
                        names.len(),
                        score.name
                    ));
                }
                for (at, name) in names.iter().enumerate() {
                    super::output::check_name(&format!("a declared {what}"), name)?;
                    if names[..at].contains(name) {
                        return Err(format!(
                            "declares `{name}` twice among the {what}s of the score `{}`",
                            score.name
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

struct PluginInstance {
    store: Store<PluginState>,
    guests: Guests,
}

/// How a contract's batch exports take their contexts and return their
/// results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContextShape {
    /// Contract 0.2: `list<context>` in, lists of results out.
    Listed,
    /// Contract 0.3: `packed-contexts` in, lists of results out.
    Packed,
    /// Contract 0.4: `packed-contexts` and every item's declared windows
    /// in, packed results out (a condition's signals packed too).
    PackedInAndOut,
    /// Contract 0.5: as 0.4, with a verdict's policy tags named by the bits
    /// of the plugin's declared tags.
    DeclaredTags,
    /// Contract 0.6: as 0.5, with a score card's score, band and factors
    /// named by their positions among the plugin's declared scores.
    DeclaredScores,
    /// Contract 0.7: as 0.6, and a ruleset's `rule`.
    Rulings,
}

impl ContextShape {
    /// Whether the exports return packed results (0.4 and later): signals
    /// the same way in every such contract, score cards 0.4's way up to
    /// 0.5 (`score_batch` takes 0.6's cards first).
    fn packs_results(self) -> bool {
        PACKED_RESULTS.contains(&self)
    }
}

/// The argument a batch export takes its contexts as: a shape's Rust type.
trait ContextsArg: ComponentType + Lower {
    const SHAPE: ContextShape;
}

impl ContextsArg for &[Lowered<'_>] {
    const SHAPE: ContextShape = ContextShape::Listed;
}

impl ContextsArg for Packed<'_> {
    const SHAPE: ContextShape = ContextShape::Packed;
}

/// Where a batching plugin's batch exports are, found once at load.
#[derive(Clone, Copy)]
struct BatchIndices {
    score: Option<ComponentExportIndex>,
    evaluate: Option<ComponentExportIndex>,
    check: Option<ComponentExportIndex>,
    plan: Option<ComponentExportIndex>,
    rule: Option<ComponentExportIndex>,
    shape: ContextShape,
}

impl BatchIndices {
    /// The batch exports a plugin of `kind` that targets contract `version`
    /// must have; a missing one refuses the component.
    fn find(kind: PluginKind, component: &Component, version: &str) -> wasmtime::Result<Self> {
        let export = |needed: bool, interface: &str, function: &str| {
            if !needed {
                return Ok(None);
            }
            let interface = format!("vigil:plugin/{interface}@{version}");
            component
                .get_export_index(None, &interface)
                .and_then(|at| component.get_export_index(Some(&at), function))
                .map(Some)
                .ok_or_else(|| {
                    wasmtime::format_err!("the component exports no `{function}` in `{interface}`")
                })
        };
        let [scoring, triggering, conditioning, planning] = interfaces_of(kind);
        Ok(Self {
            score: export(scoring, "scoring", "score")?,
            evaluate: export(triggering, "triggering", "evaluate")?,
            check: export(conditioning, "conditioning", "check")?,
            plan: export(planning, "planning", "plan")?,
            rule: export(kind == PluginKind::Ruleset, "ruling", "rule")?,
            shape: match version {
                "0.2.0" => ContextShape::Listed,
                "0.3.0" => ContextShape::Packed,
                "0.4.0" => ContextShape::PackedInAndOut,
                "0.5.0" => ContextShape::DeclaredTags,
                "0.6.0" => ContextShape::DeclaredScores,
                _ => ContextShape::Rulings,
            },
        })
    }

    /// The exports in `instance`.
    fn load(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
    ) -> wasmtime::Result<BatchFuncs> {
        let mut func = |index: Option<ComponentExportIndex>| {
            index
                .map(|index| {
                    instance
                        .get_func(&mut *store, index)
                        .ok_or_else(|| wasmtime::format_err!("a batch export is not a function"))
                })
                .transpose()
        };
        Ok(BatchFuncs {
            score: func(self.score)?,
            evaluate: func(self.evaluate)?,
            check: func(self.check)?,
            plan: func(self.plan)?,
            rule: func(self.rule)?,
            shape: self.shape,
        })
    }
}

/// One instance's batch exports (contract 0.2 and later), called with the
/// contexts lowered by the host: [`Lowered`] (0.2, one copy per record) or
/// [`Packed`] (0.3 and 0.4, four pieces per batch). Their types are checked once,
/// at load, against the signatures below for the contract's shape
/// ([`BatchFuncs::check_types`]); each call then skips the check.
#[derive(Clone, Copy)]
struct BatchFuncs {
    score: Option<Func>,
    evaluate: Option<Func>,
    check: Option<Func>,
    plan: Option<Func>,
    rule: Option<Func>,
    shape: ContextShape,
}

/// Results of a contract before 0.4, lifted by wasmtime into the
/// bindings' types, as the host's own: each `ok` converted by `convert`.
fn converted<T, U>(
    results: Vec<Result<T, PluginError>>,
    convert: impl Fn(T) -> U,
) -> Vec<Result<U, PluginError>> {
    results
        .into_iter()
        .map(|result| result.map(&convert))
        .collect()
}

/// A trigger's signals in the bindings' types (contracts before 0.4) as
/// the host's own.
fn converted_signals(signals: Vec<contract::Signal>) -> Vec<Signal> {
    signals.into_iter().map(Signal::from).collect()
}

/// Check or plan items as the bindings' types, which wasmtime lowers for
/// the contracts that take them unpacked (every `plan`, and `check` before
/// 0.4).
fn contract_items<'i, T: 'i, U: From<&'i T>>(items: &'i [T]) -> Vec<U> {
    items.iter().map(U::from).collect()
}

/// `score: func(contexts: C) -> list<result<score-card, plugin-error>>`.
type ScoreFunc<C> = TypedFunc<(C,), (Vec<Result<contract::ScoreCard, PluginError>>,)>;
/// `evaluate: func(contexts: C) -> list<result<list<signal>, plugin-error>>`.
type EvaluateFunc<C> = TypedFunc<(C,), (Vec<Result<Vec<contract::Signal>, PluginError>>,)>;
/// `check: func(contexts: C, items: list<check-item>) -> list<result<verdict, plugin-error>>`.
type CheckFunc<'a, C> =
    TypedFunc<(C, &'a [ContractCheckItem]), (Vec<Result<contract::Verdict, PluginError>>,)>;
/// `plan: func(contexts: C, items: list<plan-item>) -> list<result<list<intent>, plugin-error>>`.
type PlanFunc<'a, C> =
    TypedFunc<(C, &'a [ContractPlanItem]), (Vec<Result<Vec<Intent>, PluginError>>,)>;

/// Contract 0.4's packed results and check items.
use v0_4::vigil::plugin::types as v4;
/// 0.4 `score: func(contexts: packed-contexts, windows: list<metric-window>) -> packed-score-cards`.
type ScoreFuncV4<'a> = TypedFunc<(Packed<'a>, LoweredWindows), (Lifted<v4::PackedScoreCards>,)>;
/// 0.4 `evaluate: func(contexts: packed-contexts, windows: list<metric-window>) -> packed-signals`.
type EvaluateFuncV4<'a> = TypedFunc<(Packed<'a>, LoweredWindows), (Lifted<v4::PackedSignals>,)>;
/// 0.4 `check: func(contexts: packed-contexts, windows: list<metric-window>, items: packed-check-items) -> packed-verdicts`.
type CheckFuncV4<'a> =
    TypedFunc<(Packed<'a>, LoweredWindows, LoweredCheckItems), (Lifted<v4::PackedVerdicts>,)>;
/// 0.4 `plan: func(contexts: packed-contexts, windows: list<metric-window>, items: list<plan-item>) -> list<result<list<intent>, plugin-error>>`.
type PlanFuncV4<'a, 'b> = TypedFunc<
    (Packed<'a>, LoweredWindows, &'b [ContractPlanItem]),
    (Vec<Result<Vec<Intent>, PluginError>>,),
>;

/// Contract 0.5's packed verdicts (its other records are 0.4's in
/// structure, and its other exports are called as 0.4's).
use v0_5::vigil::plugin::types as v5;
/// 0.5 `check: func(contexts: packed-contexts, windows: list<metric-window>, items: packed-check-items) -> packed-verdicts`,
/// the verdicts' tags by bit (0.6's `check` too).
type CheckFuncV5<'a> =
    TypedFunc<(Packed<'a>, LoweredWindows, LoweredCheckItems), (Lifted<v5::PackedVerdicts>,)>;

/// Contract 0.6's packed score cards (its other records are 0.5's in
/// structure, and its other exports are called as 0.5's).
use v0_6::vigil::plugin::types as v6;
/// 0.6 `score: func(contexts: packed-contexts, windows: list<metric-window>) -> packed-score-cards`,
/// the cards' score, band and factors by position.
type ScoreFuncV6<'a> = TypedFunc<(Packed<'a>, LoweredWindows), (Lifted<v6::PackedScoreCards>,)>;

// Contract 0.7's packed rulings: its other records are 0.6's in
// structure, and its other exports are called as 0.6's.
/// 0.7 `rule: func(contexts: packed-contexts, windows: list<metric-window>) -> packed-rulings`,
/// lifted into the records of the versions its parts come from.
type RuleFuncV7<'a> = TypedFunc<(Packed<'a>, LoweredWindows), (Lifted<Rulings>,)>;

impl BatchFuncs {
    /// Checks each export's type against the signature it is called with,
    /// for the contract's shape of contexts.
    fn check_types(&self, store: &Store<PluginState>) -> wasmtime::Result<()> {
        match self.shape {
            ContextShape::Listed => self.check_types_as::<&[Lowered<'_>]>(store),
            ContextShape::Packed => self.check_types_as::<Packed<'_>>(store),
            ContextShape::PackedInAndOut
            | ContextShape::DeclaredTags
            | ContextShape::DeclaredScores
            | ContextShape::Rulings => self.check_types_v4(store),
        }
    }

    fn check_types_v4(&self, store: &Store<PluginState>) -> wasmtime::Result<()> {
        if let Some(func) = self.score {
            if DECLARED_SCORES.contains(&self.shape) {
                let _: ScoreFuncV6<'_> = func.typed(store)?;
            } else {
                let _: ScoreFuncV4<'_> = func.typed(store)?;
            }
        }
        if let Some(func) = self.evaluate {
            let _: EvaluateFuncV4<'_> = func.typed(store)?;
        }
        if let Some(func) = self.check {
            if DECLARED_TAGS.contains(&self.shape) {
                let _: CheckFuncV5<'_> = func.typed(store)?;
            } else {
                let _: CheckFuncV4<'_> = func.typed(store)?;
            }
        }
        if let Some(func) = self.plan {
            let _: PlanFuncV4<'_, '_> = func.typed(store)?;
        }
        if let Some(func) = self.rule {
            let _: RuleFuncV7<'_> = func.typed(store)?;
        }
        Ok(())
    }

    fn check_types_as<C: ContextsArg>(&self, store: &Store<PluginState>) -> wasmtime::Result<()> {
        if let Some(func) = self.score {
            let _: ScoreFunc<C> = func.typed(store)?;
        }
        if let Some(func) = self.evaluate {
            let _: EvaluateFunc<C> = func.typed(store)?;
        }
        if let Some(func) = self.check {
            let _: CheckFunc<'_, C> = func.typed(store)?;
        }
        if let Some(func) = self.plan {
            let _: PlanFunc<'_, C> = func.typed(store)?;
        }
        Ok(())
    }

    fn score<C: ContextsArg>(&self) -> wasmtime::Result<ScoreFunc<C>> {
        self.checked_at_load(&[C::SHAPE], self.score, "scoring")
    }

    fn evaluate<C: ContextsArg>(&self) -> wasmtime::Result<EvaluateFunc<C>> {
        self.checked_at_load(&[C::SHAPE], self.evaluate, "triggering")
    }

    fn check<'a, C: ContextsArg>(&self) -> wasmtime::Result<CheckFunc<'a, C>> {
        self.checked_at_load(&[C::SHAPE], self.check, "conditioning")
    }

    fn plan<'a, C: ContextsArg>(&self) -> wasmtime::Result<PlanFunc<'a, C>> {
        self.checked_at_load(&[C::SHAPE], self.plan, "planning")
    }

    fn score_v4<'a>(&self) -> wasmtime::Result<ScoreFuncV4<'a>> {
        self.checked_at_load(
            &[ContextShape::PackedInAndOut, ContextShape::DeclaredTags],
            self.score,
            "scoring",
        )
    }

    fn score_v6<'a>(&self) -> wasmtime::Result<ScoreFuncV6<'a>> {
        self.checked_at_load(DECLARED_SCORES, self.score, "scoring")
    }

    fn rule_v7<'a>(&self) -> wasmtime::Result<RuleFuncV7<'a>> {
        self.checked_at_load(&[ContextShape::Rulings], self.rule, "ruling")
    }

    fn evaluate_v4<'a>(&self) -> wasmtime::Result<EvaluateFuncV4<'a>> {
        self.checked_at_load(PACKED_RESULTS, self.evaluate, "triggering")
    }

    fn check_v4<'a>(&self) -> wasmtime::Result<CheckFuncV4<'a>> {
        self.checked_at_load(&[ContextShape::PackedInAndOut], self.check, "conditioning")
    }

    fn check_v5<'a>(&self) -> wasmtime::Result<CheckFuncV5<'a>> {
        self.checked_at_load(DECLARED_TAGS, self.check, "conditioning")
    }

    fn plan_v4<'a, 'b>(&self) -> wasmtime::Result<PlanFuncV4<'a, 'b>> {
        self.checked_at_load(PACKED_RESULTS, self.plan, "planning")
    }

    /// A batch export as the typed function whose signature
    /// [`BatchFuncs::check_types`] checked at load, for a contract of one
    /// of the shapes `shapes`; only the accessors above call this, each
    /// with its checked signature, and any other contract's is refused.
    fn checked_at_load<P, R>(
        &self,
        shapes: &[ContextShape],
        func: Option<Func>,
        interface: &str,
    ) -> wasmtime::Result<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        if !shapes.contains(&self.shape) {
            wasmtime::bail!(
                "`{interface}` of a {:?} contract is called as one of {:?}",
                self.shape,
                shapes
            );
        }
        let func = func.ok_or_else(|| not_exported(interface))?;
        // SAFETY: the type was checked at load, on an instance of the same
        // component, against the signature the calling accessor asks for,
        // for this shape of contexts.
        #[allow(unsafe_code)]
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}

/// The contracts that return packed results and whose evaluate and plan
/// exports are 0.4's: 0.4 to 0.7 (score is 0.4's up to 0.5).
const PACKED_RESULTS: &[ContextShape] = &[
    ContextShape::PackedInAndOut,
    ContextShape::DeclaredTags,
    ContextShape::DeclaredScores,
    ContextShape::Rulings,
];

/// The contracts whose `check` is 0.5's, its verdicts' tags by bit: 0.5
/// to 0.7.
const DECLARED_TAGS: &[ContextShape] = &[
    ContextShape::DeclaredTags,
    ContextShape::DeclaredScores,
    ContextShape::Rulings,
];

/// The contracts whose `score` is 0.6's, its cards' names by position:
/// 0.6 and 0.7.
const DECLARED_SCORES: &[ContextShape] = &[ContextShape::DeclaredScores, ContextShape::Rulings];

/// The part `range` of a batch's contexts or items.
fn part<T>(all: &[T], range: Range<usize>) -> wasmtime::Result<&[T]> {
    let len = all.len();
    all.get(range.clone())
        .ok_or_else(|| wasmtime::format_err!("items {range:?} are outside a batch of {len}"))
}

/// A batch export called on a range of a batch's items.
type BatchCall<'f, R> = dyn Fn(
        &BatchFuncs,
        &mut Store<PluginState>,
        Range<usize>,
    ) -> wasmtime::Result<Vec<Result<R, PluginError>>>
    + 'f;

/// Why a batch call ended without a result per item.
struct BatchFault {
    /// The item in progress when it failed (an index into the batch), if
    /// the plugin had begun one.
    at: Option<usize>,
    /// Whether the fault is the whole range's (instantiation failed, or the
    /// answer did not match the items), so calling again would not help.
    whole: bool,
    /// The fuel the failing item burned.
    fuel_used: u64,
    /// The log lines the failing item had dropped.
    logs_dropped: u32,
    /// How long the failing item ran.
    duration: Duration,
    /// How it failed.
    outcome: Outcome,
}

/// A checked, described plugin, ready to call. Calls from several threads
/// share a pool of warm instances.
pub struct Plugin {
    info: PluginInfo,
    /// The history windows the plugin declares (contract 0.3 and later),
    /// computed by the host for each item: returned by 0.3's
    /// `batching.begin`, sent with the batch in 0.4.
    windows: Arc<DeclaredWindows>,
    /// The policy tags the plugin declares (contract 0.5 and later), which
    /// its packed verdicts name by bit.
    policy_tags: Arc<[Text]>,
    /// The scores the plugin declares (contract 0.6 and later), whose
    /// names, bands and factors its packed cards name by position.
    scores: Arc<[DeclaredScore]>,
    /// The name, version and digest, shared by every record of a call.
    id: PluginRef,
    /// Whether the component imports a WASI interface that draws from the
    /// invocation's random stream (`wasi:random/random` or
    /// `wasi:random/insecure`): one that does not cannot observe the seed.
    draws_randomness: bool,
    contract: String,
    label: Arc<str>,
    engine: Engine,
    pre: InstancePre<PluginState>,
    indices: Indices,
    config: Arc<BTreeMap<String, String>>,
    limits: Limits,
    fuel: u64,
    mode: InstanceMode,
    pool: Mutex<Vec<PluginInstance>>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("label", &self.label)
            .field("digest", &self.id.digest)
            .field("fuel", &self.fuel)
            .finish_non_exhaustive()
    }
}

/// What a component imports and exports, and which world that makes it.
struct Analysis {
    imports: Vec<String>,
    exports: Vec<String>,
    world: Result<(PluginKind, String), LoadError>,
}

fn analyze(engine: &Engine, component: &Component) -> Analysis {
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    imports.sort();
    exports.sort();
    let world = check_imports(&imports).and_then(|()| world_of(&exports));
    Analysis {
        imports,
        exports,
        world,
    }
}

/// Whether import `name` hands the plugin bytes of the invocation's seeded
/// random stream. (`wasi:random/insecure-seed` answers a fixed value, and
/// the clocks read the evaluation time.)
fn draws_from_seed(name: &str) -> bool {
    matches!(
        split_version(name).0,
        "wasi:random/random" | "wasi:random/insecure"
    )
}

/// The world a component targets, from its exports.
fn world_of(exports: &[String]) -> Result<(PluginKind, String), LoadError> {
    let mut found = BTreeMap::new();
    let mut contract = None;
    for name in exports {
        let (base, version) = split_version(name);
        let Some(interface) = base.strip_prefix("vigil:plugin/") else {
            continue;
        };
        let version = version.unwrap_or("").to_string();
        if !SUPPORTED_CONTRACTS.contains(&version.as_str()) {
            return Err(LoadError::UnsupportedContract { found: version });
        }
        contract = Some(version);
        found.insert(interface, ());
    }
    let has = |interface: &str| found.contains_key(interface);
    let no_world = || LoadError::NoVigilWorld {
        exports: exports.to_vec(),
    };
    if !has("meta") {
        return Err(no_world());
    }
    let kind = match (
        has("scoring"),
        has("triggering"),
        has("conditioning"),
        has("planning"),
        has("ruling"),
    ) {
        (true, false, false, false, false) => PluginKind::Scorer,
        (false, true, false, false, false) => PluginKind::Trigger,
        (false, false, true, false, false) => PluginKind::Condition,
        (false, false, false, true, false) => PluginKind::Action,
        (false, true, true, true, false) => PluginKind::Playbook,
        (false, false, false, false, true) => PluginKind::Ruleset,
        _ => return Err(no_world()),
    };
    Ok((kind, contract.unwrap_or_default()))
}

/// The kebab-case name of a plugin kind, as in the WIT.
pub fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Scorer => "scorer",
        PluginKind::Trigger => "trigger",
        PluginKind::Condition => "condition",
        PluginKind::Action => "action",
        PluginKind::Playbook => "playbook",
        PluginKind::Ruleset => "ruleset",
    }
}

impl Plugin {
    pub(super) fn load(
        engine: &Engine,
        linker: &Linker<PluginState>,
        component: Component,
        digest: String,
        config: Arc<BTreeMap<String, String>>,
        limits: Limits,
        mode: InstanceMode,
    ) -> Result<Self, LoadError> {
        let Analysis { world, imports, .. } = analyze(engine, &component);
        let (kind, contract) = world?;
        let draws_randomness = imports.iter().any(|name| draws_from_seed(name));
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let indices = if contract == "0.1.0" {
            Indices::V1(IndicesV1::find(kind, &pre).map_err(link)?)
        } else {
            Indices::V2(IndicesV2::find(kind, &component, &contract, &pre).map_err(link)?)
        };
        let mut plugin = Self {
            info: PluginInfo {
                name: "(loading)".into(),
                version: "0.0.0".into(),
                kind,
                description: String::new(),
                subscribes: Vec::new(),
                config_schema: "{}".into(),
                default_fuel: limits.max_fuel,
            },
            windows: Arc::default(),
            policy_tags: Arc::from(Vec::new()),
            scores: Arc::from(Vec::new()),
            contract,
            label: Arc::from(format!("(loading)@{}", &digest[..12])),
            id: PluginRef::new("(loading)", "0.0.0", digest),
            draws_randomness,
            engine: engine.clone(),
            pre,
            indices,
            config,
            limits,
            fuel: limits.max_fuel,
            mode,
            pool: Mutex::new(Vec::new()),
        };
        let Described {
            info,
            windows,
            policy_tags,
            scores,
        } = plugin.describe_fresh()?;
        if info.kind != kind {
            return Err(LoadError::Describe(format!(
                "says the plugin is a {}, but the component targets the {} world",
                kind_name(info.kind),
                kind_name(kind)
            )));
        }
        // A 0.6 card names its score by position: a scorer that declares
        // none could return no card at all. (A ruleset may declare none:
        // then it raises and checks, and returns no card.)
        let names_by_position = matches!(
            &plugin.indices,
            Indices::V2(indices) if DECLARED_SCORES.contains(&indices.batch.shape)
        );
        if kind == PluginKind::Scorer && names_by_position && scores.is_empty() {
            return Err(LoadError::Describe(format!(
                "declares no score, but a contract {} scorer's cards name their score by its position among those `plugin-info.scores` declares",
                plugin.contract
            )));
        }
        plugin.windows = Arc::new(DeclaredWindows::new(windows));
        plugin.policy_tags = policy_tags.iter().map(|tag| Text::new(tag)).collect();
        plugin.scores = Arc::from(scores);
        plugin.fuel = info.default_fuel.min(limits.max_fuel);
        plugin.label = Arc::from(format!("{}@{}", info.name, info.version));
        plugin.id = PluginRef::new(
            info.name.as_str(),
            info.version.as_str(),
            plugin.id.digest.as_str(),
        );
        plugin.info = info;
        // The instance `describe` ran on was made before the plugin's name
        // and windows were known: its log lines would carry the loading
        // label, and it would hand the plugin no declared windows (every
        // window read a host call). It goes; calls get instances made from
        // here on, starting with this one.
        plugin
            .pool
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // The batch exports are called without a type check per call.
        let instance = plugin.instantiate().map_err(link)?;
        if let Guests::V2(guests) = &instance.guests {
            guests.batch.check_types(&instance.store).map_err(link)?;
        }
        plugin.put_back(instance);
        Ok(plugin)
    }

    /// Calls `describe()` on a fresh instance.
    fn describe_fresh(&self) -> Result<Described, LoadError> {
        let mut history = MetricHistory::default();
        let input = CallInput {
            now: 0,
            seed: [0; 32],
            history: &mut history,
        };
        let invocation = self.invoke("describe", input, |guests, store| {
            guests.describe(store).map(Ok)
        });
        match invocation.output {
            Some(info) => Ok(info),
            None => Err(LoadError::Describe(format!(
                "failed: {}",
                invocation.record.outcome
            ))),
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The history windows the plugin declares (contract 0.3 and later):
    /// computed by the host for every item and handed to the plugin with
    /// the batch (0.4) or by `batching.begin` (0.3).
    pub fn windows(&self) -> &[WindowSpec] {
        self.windows.specs()
    }

    /// The policy tags the plugin declares (contract 0.5 and later; none
    /// before): the only tags its verdicts can carry.
    pub fn policy_tags(&self) -> &[Text] {
        &self.policy_tags
    }

    /// The scores the plugin declares (contract 0.6 and later; none
    /// before): the only scores, bands and factors its cards can carry.
    pub fn scores(&self) -> &[DeclaredScore] {
        &self.scores
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.info.kind
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The SHA-256 digest of the component.
    pub fn digest(&self) -> &str {
        &self.id.digest
    }

    /// Whether the plugin can draw from the random stream its calls are
    /// seeded with: whether the component imports `wasi:random/random` or
    /// `wasi:random/insecure`. A plugin that does not gets the same output
    /// whatever the seed.
    pub fn draws_randomness(&self) -> bool {
        self.draws_randomness
    }

    /// The contract version the component targets.
    pub fn contract(&self) -> &str {
        &self.contract
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The fuel budget of one call.
    pub fn fuel_budget(&self) -> u64 {
        self.fuel
    }

    /// Whether the plugin wants events of `kind`.
    pub fn subscribes_to(&self, kind: &str) -> bool {
        self.info.subscribes.is_empty()
            || self
                .info
                .subscribes
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => kind.starts_with(prefix),
                    None => pattern == kind,
                })
    }

    /// Calls `score` (scorers) on one context.
    pub fn score(&self, input: CallInput<'_>, ctx: &Context) -> Invocation<ScoreCard> {
        let (inputs, histories) = input.split();
        let contexts = BatchContexts::new(std::slice::from_ref(ctx));
        let batch = Batch {
            contexts: &contexts,
            inputs: &inputs,
            histories,
        };
        self.score_batch(batch)
            .pop()
            .unwrap_or_else(|| self.lost("score"))
    }

    /// Calls `evaluate` (triggers and playbooks) on one context.
    pub fn evaluate(&self, input: CallInput<'_>, ctx: &Context) -> Invocation<Vec<Signal>> {
        let (inputs, histories) = input.split();
        let contexts = BatchContexts::new(std::slice::from_ref(ctx));
        let batch = Batch {
            contexts: &contexts,
            inputs: &inputs,
            histories,
        };
        self.evaluate_batch(batch)
            .pop()
            .unwrap_or_else(|| self.lost("evaluate"))
    }

    /// Calls `check` (conditions and playbooks) on one signal.
    pub fn check(
        &self,
        input: CallInput<'_>,
        ctx: &Context,
        signal: &Signal,
    ) -> Invocation<Verdict> {
        let (inputs, histories) = input.split();
        let contexts = BatchContexts::new(std::slice::from_ref(ctx));
        let batch = Batch {
            contexts: &contexts,
            inputs: &inputs,
            histories,
        };
        let item = CheckItem {
            context: 0,
            signal: signal.clone(),
        };
        self.check_batch(batch, std::slice::from_ref(&item))
            .pop()
            .unwrap_or_else(|| self.lost("check"))
    }

    /// Calls `plan` (actions and playbooks) on one signal.
    pub fn plan(
        &self,
        input: CallInput<'_>,
        ctx: &Context,
        signal: &Signal,
        verdict: &Verdict,
    ) -> Invocation<Vec<Intent>> {
        let (inputs, histories) = input.split();
        let contexts = BatchContexts::new(std::slice::from_ref(ctx));
        let batch = Batch {
            contexts: &contexts,
            inputs: &inputs,
            histories,
        };
        let item = PlanItem {
            context: 0,
            signal: signal.clone(),
            verdict: verdict.clone(),
        };
        self.plan_batch(batch, std::slice::from_ref(&item))
            .pop()
            .unwrap_or_else(|| self.lost("plan"))
    }

    /// Calls `score` (scorers) on every context of `batch`: one invocation
    /// per context, in order.
    pub fn score_batch(&self, batch: Batch<'_>) -> Vec<Invocation<ScoreCard>> {
        let Batch {
            contexts: shared,
            inputs,
            histories,
        } = batch;
        let contexts = shared.as_slice();
        let items = per_context(inputs);
        match &self.indices {
            Indices::V1(_) => {
                self.call_each("score", &items, histories, |guests, store, at| {
                    match (&guests.scoring, contexts.get(at.context)) {
                        (Some(scoring), Some(ctx)) => {
                            Ok(scoring.call_score(store, ctx)?.map(ScoreCard::from))
                        }
                        _ => Err(not_exported("scoring")),
                    }
                })
            }
            Indices::V2(indices) if DECLARED_SCORES.contains(&indices.batch.shape) => self
                .invoke_batch("score", &items, histories, &|funcs, store, range| {
                    let limit = self.unpack_limit(&range);
                    let contexts = shared.packed(range)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    let (Lifted(cards),) = funcs.score_v6()?.call(store, (contexts, windows))?;
                    unpack::declared_cards(cards, &self.scores, limit)
                })
                .into_iter()
                .map(|invocation| Invocation {
                    output: invocation.output.map(|DeclaredCard(card)| card),
                    record: invocation.record,
                })
                .collect(),
            Indices::V2(indices) if indices.batch.shape.packs_results() => {
                self.invoke_batch("score", &items, histories, &|funcs, store, range| {
                    let limit = self.unpack_limit(&range);
                    let contexts = shared.packed(range)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    let (Lifted(cards),) = funcs.score_v4()?.call(store, (contexts, windows))?;
                    unpack::cards(cards, limit)
                })
            }
            Indices::V2(indices) if indices.batch.shape == ContextShape::Packed => self
                .invoke_batch("score", &items, histories, &|funcs, store, range| {
                    let contexts = shared.packed(range)?;
                    let results = funcs.score()?.call(store, (contexts,))?.0;
                    Ok(converted(results, ScoreCard::from))
                }),
            Indices::V2(_) => {
                let contexts = lowered(contexts);
                self.invoke_batch("score", &items, histories, &|funcs, store, range| {
                    let contexts: &[Lowered<'_>] = part(&contexts, range)?;
                    let results = funcs.score()?.call(store, (contexts,))?.0;
                    Ok(converted(results, ScoreCard::from))
                })
            }
        }
    }

    /// Calls `rule` (rulesets, contract 0.7) on every context of `batch`:
    /// one invocation per context, in order, each the cards, signals and
    /// verdicts of its context. A plugin of another kind has no `rule`:
    /// each invocation fails.
    pub fn rule_batch(&self, batch: Batch<'_>) -> Vec<Invocation<Ruling>> {
        let Batch {
            contexts: shared,
            inputs,
            histories,
        } = batch;
        let items = per_context(inputs);
        self.invoke_batch("rule", &items, histories, &|funcs, store, range| {
            let limit = self.unpack_limit(&range);
            let contexts = shared.packed(range)?;
            let windows = LoweredWindows(store.data().batch_windows());
            let (Lifted(rulings),) = funcs.rule_v7()?.call(store, (contexts, windows))?;
            unpack::rulings(rulings, &self.scores, &self.policy_tags, limit)
        })
        .into_iter()
        .map(|invocation| Invocation {
            output: invocation.output.map(|DeclaredRuling(ruling)| ruling),
            record: invocation.record,
        })
        .collect()
    }

    /// Calls `evaluate` (triggers and playbooks) on every context of
    /// `batch`: one invocation per context, in order.
    pub fn evaluate_batch(&self, batch: Batch<'_>) -> Vec<Invocation<Vec<Signal>>> {
        let Batch {
            contexts: shared,
            inputs,
            histories,
        } = batch;
        let contexts = shared.as_slice();
        let items = per_context(inputs);
        match &self.indices {
            Indices::V1(_) => self.call_each("evaluate", &items, histories, |guests, store, at| {
                match (&guests.triggering, contexts.get(at.context)) {
                    (Some(triggering), Some(ctx)) => {
                        Ok(triggering.call_evaluate(store, ctx)?.map(converted_signals))
                    }
                    _ => Err(not_exported("triggering")),
                }
            }),
            Indices::V2(indices) if indices.batch.shape.packs_results() => {
                self.invoke_batch("evaluate", &items, histories, &|funcs, store, range| {
                    let limit = self.unpack_limit(&range);
                    let contexts = shared.packed(range)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    let (Lifted(signals),) =
                        funcs.evaluate_v4()?.call(store, (contexts, windows))?;
                    unpack::signals(signals, limit)
                })
            }
            Indices::V2(indices) if indices.batch.shape == ContextShape::Packed => self
                .invoke_batch("evaluate", &items, histories, &|funcs, store, range| {
                    let contexts = shared.packed(range)?;
                    let results = funcs.evaluate()?.call(store, (contexts,))?.0;
                    Ok(converted(results, converted_signals))
                }),
            Indices::V2(_) => {
                let contexts = lowered(contexts);
                self.invoke_batch("evaluate", &items, histories, &|funcs, store, range| {
                    let contexts: &[Lowered<'_>] = part(&contexts, range)?;
                    let results = funcs.evaluate()?.call(store, (contexts,))?.0;
                    Ok(converted(results, converted_signals))
                })
            }
        }
    }

    /// Calls `check` (conditions and playbooks) on every item: one
    /// invocation per item, in order. Items name their context in `batch`.
    pub fn check_batch(&self, batch: Batch<'_>, items: &[CheckItem]) -> Vec<Invocation<Verdict>> {
        let Batch {
            contexts: shared,
            inputs,
            histories,
        } = batch;
        let contexts = shared.as_slice();
        let setup = per_item(inputs, items.iter().map(|item| item.context));
        match &self.indices {
            Indices::V1(_) => self.call_each("check", &setup, histories, |guests, store, at| {
                let item = items.get(at.index);
                match (&guests.conditioning, contexts.get(at.context), item) {
                    (Some(conditioning), Some(ctx), Some(item)) => Ok(conditioning
                        .call_check(store, ctx, &(&item.signal).into())?
                        .map(Verdict::from)),
                    _ => Err(not_exported("conditioning")),
                }
            }),
            Indices::V2(indices) if indices.batch.shape == ContextShape::PackedInAndOut => self
                .invoke_batch("check", &setup, histories, &|funcs, store, range| {
                    let limit = self.unpack_limit(&range);
                    let items = LoweredCheckItems::new(part(items, range)?)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    let (Lifted(verdicts),) = funcs
                        .check_v4()?
                        .call(store, (shared.packed(0..contexts.len())?, windows, items))?;
                    unpack::verdicts(verdicts, limit)
                }),
            Indices::V2(indices) if DECLARED_TAGS.contains(&indices.batch.shape) => self
                .invoke_batch("check", &setup, histories, &|funcs, store, range| {
                    let limit = self.unpack_limit(&range);
                    let items = LoweredCheckItems::new(part(items, range)?)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    let (Lifted(verdicts),) = funcs
                        .check_v5()?
                        .call(store, (shared.packed(0..contexts.len())?, windows, items))?;
                    unpack::tagged_verdicts(verdicts, &self.policy_tags, limit)
                })
                .into_iter()
                .map(|invocation| Invocation {
                    output: invocation.output.map(|DeclaredVerdict(verdict)| verdict),
                    record: invocation.record,
                })
                .collect(),
            Indices::V2(indices) if indices.batch.shape == ContextShape::Packed => {
                let items = contract_items::<_, ContractCheckItem>(items);
                self.invoke_batch("check", &setup, histories, &|funcs, store, range| {
                    let items = part(&items, range)?;
                    let results = funcs
                        .check()?
                        .call(store, (shared.packed(0..contexts.len())?, items))?
                        .0;
                    Ok(converted(results, Verdict::from))
                })
            }
            Indices::V2(_) => {
                let contexts = lowered(contexts);
                let items = contract_items::<_, ContractCheckItem>(items);
                self.invoke_batch("check", &setup, histories, &|funcs, store, range| {
                    let items = part(&items, range)?;
                    let results = funcs.check()?.call(store, (&contexts[..], items))?.0;
                    Ok(converted(results, Verdict::from))
                })
            }
        }
    }

    /// Calls `plan` (actions and playbooks) on every item: one invocation
    /// per item, in order. Items name their context in `batch`.
    pub fn plan_batch(&self, batch: Batch<'_>, items: &[PlanItem]) -> Vec<Invocation<Vec<Intent>>> {
        let Batch {
            contexts: shared,
            inputs,
            histories,
        } = batch;
        let contexts = shared.as_slice();
        let setup = per_item(inputs, items.iter().map(|item| item.context));
        match &self.indices {
            Indices::V1(_) => self.call_each("plan", &setup, histories, |guests, store, at| {
                let item = items.get(at.index);
                match (&guests.planning, contexts.get(at.context), item) {
                    (Some(planning), Some(ctx), Some(item)) => planning.call_plan(
                        store,
                        ctx,
                        &(&item.signal).into(),
                        &(&item.verdict).into(),
                    ),
                    _ => Err(not_exported("planning")),
                }
            }),
            Indices::V2(indices) if indices.batch.shape.packs_results() => {
                let items = contract_items::<_, ContractPlanItem>(items);
                self.invoke_batch("plan", &setup, histories, &|funcs, store, range| {
                    let items = part(&items, range)?;
                    let windows = LoweredWindows(store.data().batch_windows());
                    Ok(funcs
                        .plan_v4()?
                        .call(store, (shared.packed(0..contexts.len())?, windows, items))?
                        .0)
                })
            }
            Indices::V2(indices) if indices.batch.shape == ContextShape::Packed => {
                let items = contract_items::<_, ContractPlanItem>(items);
                self.invoke_batch("plan", &setup, histories, &|funcs, store, range| {
                    let items = part(&items, range)?;
                    Ok(funcs
                        .plan()?
                        .call(store, (shared.packed(0..contexts.len())?, items))?
                        .0)
                })
            }
            Indices::V2(_) => {
                let contexts = lowered(contexts);
                let items = contract_items::<_, ContractPlanItem>(items);
                self.invoke_batch("plan", &setup, histories, &|funcs, store, range| {
                    let items = part(&items, range)?;
                    Ok(funcs.plan()?.call(store, (&contexts[..], items))?.0)
                })
            }
        }
    }

    /// The limit a batch call's packed results are unpacked under: the
    /// output limit for each of the `range`'s items, and no more for
    /// results past them.
    fn unpack_limit(&self, range: &Range<usize>) -> unpack::Limit {
        unpack::Limit {
            per_item: self.limits.output_bytes,
            items: range.len(),
        }
    }

    /// The invocation of a call whose result went missing, which a batch of
    /// one never does; kept so that no path can panic.
    fn lost<R>(&self, call: &'static str) -> Invocation<R> {
        Invocation {
            output: None,
            record: self.record(
                call,
                0,
                Instant::now(),
                0,
                Outcome::InvalidOutput {
                    reason: "the call returned no result".into(),
                },
            ),
        }
    }

    fn instantiate(&self) -> wasmtime::Result<PluginInstance> {
        let state = PluginState::new(
            Arc::clone(&self.label),
            Arc::clone(&self.config),
            Arc::clone(&self.windows),
            self.limits.memory_bytes,
            self.draws_randomness,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        self.arm(&mut store)?;
        let instance = self.pre.instantiate(&mut store)?;
        let guests = match &self.indices {
            Indices::V1(indices) => Guests::V1(indices.load(&mut store, &instance)?),
            Indices::V2(indices) => Guests::V2(indices.load(&mut store, &instance)?),
        };
        Ok(PluginInstance { store, guests })
    }

    /// Gives a store a call's fuel budget and deadline, as far as the
    /// runtime's interruption mode uses them.
    fn arm(&self, store: &mut Store<PluginState>) -> wasmtime::Result<()> {
        if self.limits.interruption.fuel() {
            store.set_fuel(self.fuel)?;
        }
        if self.limits.interruption.epoch() {
            store.set_epoch_deadline(self.deadline_ticks());
        }
        Ok(())
    }

    /// Instantiates the plugin once — a new store under the runtime's
    /// limits, the instance from the component pre-instantiated at load,
    /// its exports looked up — and returns how long that took, then drops
    /// the instance (its teardown, untimed, returns the memory to the
    /// pool). That is the fixed cost a call on a fresh instance pays before
    /// the call itself; the benchmarks time it. A failure is reported as
    /// the `Trap` outcome a call would record.
    pub fn instantiate_once(&self) -> Result<std::time::Duration, Outcome> {
        let started = Instant::now();
        let instance = self.instantiate().map_err(|error| Outcome::Trap {
            reason: format!("instantiation failed: {error:#}"),
        })?;
        let elapsed = started.elapsed();
        drop(instance);
        Ok(elapsed)
    }

    fn deadline_ticks(&self) -> u64 {
        let ticks = self
            .limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    fn record(
        &self,
        call: &'static str,
        fuel_used: u64,
        started: Instant,
        logs_dropped: u32,
        outcome: Outcome,
    ) -> InvocationRecord {
        self.record_spent(call, fuel_used, started.elapsed(), logs_dropped, outcome)
    }

    fn record_spent(
        &self,
        call: &'static str,
        fuel_used: u64,
        duration: Duration,
        logs_dropped: u32,
        outcome: Outcome,
    ) -> InvocationRecord {
        InvocationRecord {
            plugin: self.id,
            call,
            fuel_used,
            duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            logs_dropped,
            outcome,
        }
    }

    /// A warm instance from the pool, or a new one.
    fn take_instance(&self) -> wasmtime::Result<PluginInstance> {
        let pooled = match self.mode {
            InstanceMode::Warm => self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop(),
            InstanceMode::Fresh => None,
        };
        pooled.map(Ok).unwrap_or_else(|| self.instantiate())
    }

    /// Keeps an instance that ended its call cleanly for the next call.
    fn put_back(&self, instance: PluginInstance) {
        let reusable = self.mode == InstanceMode::Warm
            && instance.store.data().stderr_used() <= STDERR_CAPTURE_BYTES / 2;
        if reusable {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < MAX_POOLED_INSTANCES {
                pool.push(instance);
            }
        }
    }

    /// What a result of `call` comes to once the host has checked it.
    fn check_output<R: PluginOutput>(
        &self,
        result: Result<R, PluginError>,
    ) -> (Option<R>, Outcome) {
        match result {
            Ok(output) => {
                let bytes = output.size();
                if bytes > self.limits.output_bytes {
                    (
                        None,
                        Outcome::OutputTooLarge {
                            bytes,
                            limit: self.limits.output_bytes,
                        },
                    )
                } else if let Err(reason) = output.validate() {
                    (None, Outcome::InvalidOutput { reason })
                } else {
                    (Some(output), Outcome::Ok)
                }
            }
            Err(error) => (None, plugin_error(error)),
        }
    }

    /// Contract 0.1 under the batch methods: one call per item.
    fn call_each<R: PluginOutput>(
        &self,
        call: &'static str,
        items: &[BatchItem],
        histories: &mut [MetricHistory],
        f: impl Fn(&GuestsV1, &mut Store<PluginState>, At) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Vec<Invocation<R>> {
        let mut invocations = Vec::with_capacity(items.len());
        let mut missing = MetricHistory::default();
        for (index, item) in items.iter().enumerate() {
            let history = histories.get_mut(item.context).unwrap_or(&mut missing);
            let input = CallInput {
                now: item.now,
                seed: item.seed,
                history,
            };
            let at = At {
                index,
                context: item.context,
            };
            invocations.push(self.invoke(call, input, |guests, store| match guests {
                Guests::V1(guests) => f(guests, store, at),
                Guests::V2(_) => Err(wasmtime::format_err!(
                    "a contract 0.2 plugin was called one event at a time"
                )),
            }));
        }
        invocations
    }

    /// Contract 0.2: the items in as few batch calls as containment allows.
    /// A fault (trap, limit hit) ends the call it happened in; the item it
    /// happened on records it, and the items around it are called again,
    /// so one bad event fails alone. A fault before the first item (the
    /// batch too large to lower, say) splits the batch in two.
    fn invoke_batch<R: PluginOutput>(
        &self,
        call: &'static str,
        items: &[BatchItem],
        histories: &mut [MetricHistory],
        f: &BatchCall<'_, R>,
    ) -> Vec<Invocation<R>> {
        if items.is_empty() {
            return Vec::new();
        }
        // The usual case, a batch that answers in one call, hands its
        // answers straight back: no slots to move them through.
        let first = match self.run_batch(call, items, 0..items.len(), histories, f) {
            Ok(invocations) => return invocations,
            Err(fault) => fault,
        };
        let mut done: Vec<Option<Invocation<R>>> = (0..items.len()).map(|_| None).collect();
        // Each range with whether it is already a retry: a retried range
        // that faults again goes on one item at a time, so a plugin that
        // faults over and over costs at most a few calls per item. The
        // first entry is the whole batch, whose fault is already known.
        let mut pending = vec![(0..items.len(), false)];
        let mut first = Some(first);
        while let Some((range, retried)) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            let answer = match first.take() {
                Some(fault) => Err(fault),
                None => self.run_batch(call, items, range.clone(), histories, f),
            };
            let fault = match answer {
                Ok(invocations) => {
                    for (slot, invocation) in done[range].iter_mut().zip(invocations) {
                        *slot = Some(invocation);
                    }
                    continue;
                }
                Err(fault) => fault,
            };
            let failed = |outcome: Outcome| Invocation {
                output: None,
                record: self.record_spent(
                    call,
                    fault.fuel_used,
                    fault.duration,
                    fault.logs_dropped,
                    outcome,
                ),
            };
            let mut retry = |range: Range<usize>| {
                if retried {
                    pending.extend(range.rev().map(|at| (at..at + 1, true)));
                } else {
                    pending.push((range, true));
                }
            };
            match fault.at {
                Some(at) if !fault.whole => {
                    done[at] = Some(failed(fault.outcome.clone()));
                    retry(at + 1..range.end);
                    retry(range.start..at);
                }
                None if !fault.whole && range.len() > 1 => {
                    let middle = range.start + range.len() / 2;
                    pending.push((middle..range.end, retried));
                    pending.push((range.start..middle, retried));
                }
                _ => {
                    for slot in &mut done[range] {
                        *slot = Some(failed(fault.outcome.clone()));
                    }
                }
            }
        }
        done.into_iter()
            .map(|slot| slot.unwrap_or_else(|| self.lost(call)))
            .collect()
    }

    /// The fault of a batch call whose answer is refused as a whole (it
    /// miscounts the items, or its packed results are malformed), on a
    /// range of `items` items. It is narrowed down by halves, so an item
    /// whose content makes the plugin answer so fails alone.
    fn refused_answer(
        &self,
        call: &'static str,
        items: usize,
        started: Instant,
        reason: String,
    ) -> BatchFault {
        let outcome = Outcome::InvalidOutput { reason };
        tracing::warn!(plugin = %self.label, call, %outcome, "plugin call contained");
        BatchFault {
            at: None,
            whole: items <= 1,
            fuel_used: 0,
            logs_dropped: 0,
            duration: started.elapsed(),
            outcome,
        }
    }

    /// One batch call over `items[range]` on one instance.
    fn run_batch<R: PluginOutput>(
        &self,
        call: &'static str,
        items: &[BatchItem],
        range: Range<usize>,
        histories: &mut [MetricHistory],
        f: &BatchCall<'_, R>,
    ) -> Result<Vec<Invocation<R>>, BatchFault> {
        let started = Instant::now();
        let calls = items.get(range.clone()).unwrap_or(&[]);
        let mut instance = self.take_instance().map_err(|error| BatchFault {
            at: None,
            whole: true,
            fuel_used: 0,
            logs_dropped: 0,
            duration: started.elapsed(),
            outcome: Outcome::Trap {
                reason: format!("instantiation failed: {error:#}"),
            },
        })?;
        let prepared = self.arm(&mut instance.store);
        {
            let state = instance.store.data_mut();
            let batch = &mut state.batch;
            batch.items.clear();
            batch.items.extend_from_slice(calls);
            batch.next = 0;
            batch.began = None;
            batch.spent.clear();
            batch.fuel = self.limits.interruption.fuel().then_some(self.fuel);
            batch.deadline_ticks = self
                .limits
                .interruption
                .epoch()
                .then(|| self.deadline_ticks());
            batch.log_bytes = self.limits.log_bytes;
            batch.ended = false;
            batch.retired = false;
            // Lifting the batch before the first item and handing back the
            // results after `end` may cost what the items' calls could.
            let items = u64::try_from(calls.len()).unwrap_or(u64::MAX).max(1);
            batch.glue_fuel = batch.fuel.map(|fuel| fuel.saturating_mul(items));
            // Until the first `begin`, the world is the first item's.
            if let Some(first) = calls.first() {
                state.now = first.now;
                state.clock.set(first.now);
                state.reseed(first.seed);
                state.subject = first.context;
            }
            state.log_bytes_left = self.limits.log_bytes;
            state.log_lines_dropped = 0;
            state.forget_error_log();
            state.limiter.exceeded = false;
            lend(&mut state.histories, histories);
        }
        let glue = instance.store.data().batch.glue_fuel;
        let prepared = match (prepared, glue) {
            (Ok(()), Some(fuel)) => instance.store.set_fuel(fuel),
            (prepared, _) => prepared,
        };
        let result = prepared.and_then(|()| match &instance.guests {
            Guests::V2(guests) => f(&guests.batch, &mut instance.store, range.clone()),
            Guests::V1(_) => Err(wasmtime::format_err!(
                "a contract 0.1 plugin was called with a batch"
            )),
        });
        let current = instance.store.data().batch.current();
        end_item(&mut instance.store);
        give_back(&mut instance.store.data_mut().histories, histories);

        let results = match result {
            Ok(results) => results,
            Err(_) if instance.store.data().batch.retired => {
                // Not a fault: the items from the one about to begin are
                // called again on a fresh instance; the ones before it, too
                // (their results went with the call).
                return Err(BatchFault {
                    at: None,
                    whole: false,
                    fuel_used: 0,
                    logs_dropped: 0,
                    duration: started.elapsed(),
                    outcome: Outcome::Trap {
                        reason: "stderr capture full".into(),
                    },
                });
            }
            Err(error) if error.downcast_ref::<MalformedResults>().is_some() => {
                return Err(self.refused_answer(call, calls.len(), started, error.to_string()));
            }
            Err(error) => {
                let state = instance.store.data();
                let outcome = classify_trap(&error, state);
                let spent = current.and_then(|i| state.batch.spent.get(i)).copied();
                tracing::warn!(plugin = %self.label, call, %outcome, item = ?current, "plugin call contained");
                return Err(BatchFault {
                    at: current.map(|i| range.start + i),
                    whole: false,
                    fuel_used: spent.map_or(0, |s| s.fuel),
                    logs_dropped: spent.map_or(0, |s| s.logs_dropped),
                    duration: spent.map_or_else(|| started.elapsed(), |s| s.duration),
                    outcome,
                });
            }
        };
        let spent = std::mem::take(&mut instance.store.data_mut().batch.spent);
        if results.len() != calls.len() || spent.len() != calls.len() {
            let reason = format!(
                "the batch export was given {} items, began {} and answered {}",
                calls.len(),
                spent.len(),
                results.len()
            );
            return Err(self.refused_answer(call, calls.len(), started, reason));
        }
        let mut clean = true;
        let invocations: Vec<Invocation<R>> = results
            .into_iter()
            .zip(&spent)
            .map(|(result, spent)| {
                let (output, outcome) = self.check_output(result);
                if outcome.is_fault() {
                    clean = false;
                    tracing::warn!(plugin = %self.label, call, %outcome, "plugin call contained");
                }
                Invocation {
                    output,
                    record: self.record_spent(
                        call,
                        spent.fuel,
                        spent.duration,
                        spent.logs_dropped,
                        outcome,
                    ),
                }
            })
            .collect();
        instance.store.data_mut().batch.spent = spent;
        if clean {
            self.put_back(instance);
        }
        Ok(invocations)
    }

    /// Runs one call under the limits and contains whatever goes wrong: a
    /// faulty instance is dropped, never reused.
    fn invoke<R: PluginOutput>(
        &self,
        call: &'static str,
        input: CallInput<'_>,
        f: impl FnOnce(&Guests, &mut Store<PluginState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Invocation<R> {
        let started = Instant::now();
        let mut instance = match self.take_instance() {
            Ok(instance) => instance,
            Err(error) => {
                let outcome = Outcome::Trap {
                    reason: format!("instantiation failed: {error:#}"),
                };
                return Invocation {
                    output: None,
                    record: self.record(call, 0, started, 0, outcome),
                };
            }
        };

        let prepared = self.arm(&mut instance.store);
        {
            let state = instance.store.data_mut();
            state.now = input.now;
            state.clock.set(input.now);
            state.reseed(input.seed);
            state.log_bytes_left = self.limits.log_bytes;
            state.log_lines_dropped = 0;
            state.forget_error_log();
            state.limiter.exceeded = false;
            state.subject = 0;
            lend(&mut state.histories, std::slice::from_mut(input.history));
        }
        let result = prepared.and_then(|()| f(&instance.guests, &mut instance.store));
        let store = &mut instance.store;
        give_back(
            &mut store.data_mut().histories,
            std::slice::from_mut(input.history),
        );
        let fuel_used = if self.limits.interruption.fuel() {
            self.fuel.saturating_sub(store.get_fuel().unwrap_or(0))
        } else {
            0
        };
        let logs_dropped = store.data().log_lines_dropped;

        let (output, outcome) = match result {
            Ok(result) => self.check_output(result),
            Err(error) => (None, classify_trap(&error, store.data())),
        };
        if outcome.is_fault() {
            tracing::warn!(plugin = %self.label, call, %outcome, "plugin call contained");
        } else {
            self.put_back(instance);
        }
        Invocation {
            output,
            record: self.record(call, fuel_used, started, logs_dropped, outcome),
        }
    }
}

/// Where an item of a batch is: its position, and its context's.
#[derive(Debug, Clone, Copy)]
struct At {
    index: usize,
    context: usize,
}

impl<'a> CallInput<'a> {
    /// The input of a batch of one.
    fn split(self) -> ([ItemInput; 1], &'a mut [MetricHistory]) {
        (
            [ItemInput {
                now: self.now,
                seed: self.seed,
            }],
            std::slice::from_mut(self.history),
        )
    }
}

/// One item per context, in order.
fn per_context(inputs: &[ItemInput]) -> Vec<BatchItem> {
    inputs
        .iter()
        .enumerate()
        .map(|(context, input)| BatchItem {
            now: input.now,
            seed: input.seed,
            context,
        })
        .collect()
}

/// One item per entry of `contexts` (each naming a context by position),
/// with that context's input.
fn per_item(inputs: &[ItemInput], contexts: impl Iterator<Item = u32>) -> Vec<BatchItem> {
    contexts
        .map(|context| {
            let context = usize::try_from(context).unwrap_or(usize::MAX);
            let input = inputs.get(context).copied().unwrap_or(ItemInput {
                now: 0,
                seed: [0; 32],
            });
            BatchItem {
                now: input.now,
                seed: input.seed,
                context,
            }
        })
        .collect()
}

fn not_exported(interface: &str) -> wasmtime::Error {
    wasmtime::format_err!("the plugin does not export {interface}")
}

/// Moves the caller's histories into the store's slots for a call (the
/// caller is left with empty ones). The slots keep the empty histories
/// the last call gave back, so a call makes only those it lacks: a batch
/// call lends every context's history, and making and dropping an empty
/// one for each (a hash map's seed drawn, its table dropped) was some 200
/// instructions an event (BENCHMARKS.md, "What was made faster",
/// 2026-12-06 19:11).
fn lend(slots: &mut Vec<MetricHistory>, histories: &mut [MetricHistory]) {
    slots.truncate(histories.len());
    // Only new, empty histories are kept between calls; any other (a call
    // that never gave back) must not reach the caller.
    for slot in slots.iter_mut().filter(|slot| !slot.holds_no_metric()) {
        *slot = MetricHistory::default();
    }
    slots.resize_with(histories.len(), MetricHistory::default);
    slots.swap_with_slice(histories);
}

/// Moves the histories back to the caller after a call, keeping the empty
/// ones it had lent in the slots for the next call.
fn give_back(slots: &mut Vec<MetricHistory>, histories: &mut [MetricHistory]) {
    if slots.len() == histories.len() {
        slots.swap_with_slice(histories);
    } else {
        slots.clear();
    }
}

/// `batching.begin(index)`: ends the item in progress, recording what it
/// spent, and sets up item `index` — its clock, randomness, history, fuel
/// budget, deadline and log allowance — as if it were a call of its own.
/// An index other than the next one traps the call.
pub(super) fn begin_item(
    mut store: StoreContextMut<'_, PluginState>,
    index: u32,
) -> wasmtime::Result<()> {
    let index = usize::try_from(index).unwrap_or(usize::MAX);
    let batch = &store.data().batch;
    let (next, len) = (batch.next, batch.items.len());
    let Some(item) = batch
        .items
        .get(index)
        .copied()
        .filter(|_| index == next && !batch.ended)
    else {
        // The item in progress is done; the fault is the batch's, not its,
        // so the host narrows it down by calling halves of the batch.
        end_item(&mut store);
        return Err(wasmtime::format_err!(
            "batching.begin({index}) out of order: the batch has {len} items and item {next} is next"
        ));
    };
    let (fuel, deadline, log_bytes) = (batch.fuel, batch.deadline_ticks, batch.log_bytes);
    // One clock reading ends the last item and starts this one.
    let now = Instant::now();
    end_item_at(&mut store, now);
    // An instance that has used half of its stderr capture is retired
    // between calls; a batch checks between items too, so that a chatty
    // plugin never meets the end of the capture mid-item. The items left
    // are called again on another instance.
    if store.data().stderr_used() > STDERR_CAPTURE_BYTES / 2 {
        store.data_mut().batch.retired = true;
        return Err(wasmtime::format_err!(
            "the instance's stderr capture is half full; retiring it"
        ));
    }
    if let Some(fuel) = fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(ticks) = deadline {
        store.set_epoch_deadline(ticks);
    }
    let state = store.data_mut();
    state.now = item.now;
    state.clock.set(item.now);
    state.reseed(item.seed);
    state.subject = item.context;
    state.log_bytes_left = log_bytes;
    state.log_lines_dropped = 0;
    state.forget_error_log();
    state.batch.next = index + 1;
    state.batch.began = Some(now);
    Ok(())
}

/// `batching.end()`: ends the last item and gives the rest of the call —
/// returning the results, freeing the batch — a budget of its own.
pub(super) fn end_items(mut store: StoreContextMut<'_, PluginState>) -> wasmtime::Result<()> {
    if store.data().batch.ended {
        return Err(wasmtime::format_err!("batching.end() called twice"));
    }
    end_item(&mut store);
    let (glue, deadline) = {
        let batch = &store.data().batch;
        (batch.glue_fuel, batch.deadline_ticks)
    };
    if let Some(fuel) = glue {
        store.set_fuel(fuel)?;
    }
    if let Some(ticks) = deadline {
        store.set_epoch_deadline(ticks);
    }
    store.data_mut().batch.ended = true;
    Ok(())
}

/// Records what the item in progress spent, if one is.
fn end_item(store: impl AsContextMut<Data = PluginState>) {
    end_item_at(store, Instant::now());
}

/// Records what the item in progress spent, if one is, as of `now`.
fn end_item_at(mut store: impl AsContextMut<Data = PluginState>, now: Instant) {
    let mut store = store.as_context_mut();
    let Some(began) = store.data().batch.began else {
        return;
    };
    let fuel = match store.data().batch.fuel {
        Some(budget) => budget.saturating_sub(store.get_fuel().unwrap_or(0)),
        None => 0,
    };
    let state = store.data_mut();
    let spent = ItemSpent {
        fuel,
        logs_dropped: state.log_lines_dropped,
        duration: now.saturating_duration_since(began),
    };
    state.batch.spent.push(spent);
    state.batch.began = None;
}

fn plugin_error(error: PluginError) -> Outcome {
    let (kind, message) = match error {
        PluginError::InvalidInput(m) => ("invalid-input", m),
        PluginError::InvalidConfig(m) => ("invalid-config", m),
        PluginError::InsufficientData(m) => ("insufficient-data", m),
        PluginError::Internal(m) => ("internal", m),
    };
    Outcome::PluginError {
        kind: kind.to_string(),
        message,
    }
}

fn classify_trap(error: &wasmtime::Error, state: &PluginState) -> Outcome {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(Trap::Interrupt) => Outcome::Timeout,
        _ if state.limiter.exceeded => Outcome::MemoryLimit,
        _ => {
            // A `std` guest on WASI writes a panic's message to stderr;
            // one built without WASI has the SDK's panic hook log it.
            let stderr = state.stderr_tail();
            let reason = match &state.last_error_log {
                _ if !stderr.is_empty() => format!("{error:#}; guest stderr: {stderr}"),
                Some(line) => format!("{error:#}; guest log: {line}"),
                None => format!("{error:#}"),
            };
            Outcome::Trap { reason }
        }
    }
}

/// What `vigil plugin check` reports about a component.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    /// The SHA-256 digest of the bytes.
    pub digest: String,
    /// The size of the component in bytes.
    pub size: usize,
    /// The world it targets, if any.
    pub world: Option<String>,
    /// The contract version it targets, if any.
    pub contract: Option<String>,
    /// Everything it imports.
    pub imports: Vec<String>,
    /// Everything it exports.
    pub exports: Vec<String>,
    /// What `describe()` returned, if the component loads.
    pub info: Option<PluginInfo>,
    /// The history windows `describe()` declared (contract 0.3 and later), if the
    /// component loads.
    pub windows: Vec<WindowSpec>,
    /// The policy tags `describe()` declared (contract 0.5 and later), if
    /// the component loads.
    pub policy_tags: Vec<String>,
    /// The scores `describe()` declared (contract 0.6 and later), if the
    /// component loads.
    pub scores: Vec<DeclaredScore>,
    /// The fuel budget a call would get.
    pub fuel_budget: Option<u64>,
    /// The linear memories an instance of it creates (the host's memory
    /// cap is on their sum), if it compiles.
    pub memories: Option<u32>,
    /// The bytes the largest of those memories starts with, before the
    /// plugin grows it: its stack, its data and, for a plugin built with
    /// the SDK, the heap its allocator starts with.
    pub initial_memory_bytes: Option<u64>,
    /// Why the host would refuse it, if it would.
    pub refused: Option<String>,
}

impl ComponentReport {
    /// Whether the host would load the component.
    pub fn loads(&self) -> bool {
        self.refused.is_none()
    }
}

/// The size of a Wasm page (the unit memories are sized in).
const WASM_PAGE_BYTES: u64 = 64 << 10;

pub(super) fn inspect(runtime: &Runtime, bytes: &[u8]) -> ComponentReport {
    let mut report = ComponentReport {
        digest: super::cache::digest(bytes),
        size: bytes.len(),
        world: None,
        contract: None,
        imports: Vec::new(),
        exports: Vec::new(),
        info: None,
        windows: Vec::new(),
        policy_tags: Vec::new(),
        scores: Vec::new(),
        fuel_budget: None,
        memories: None,
        initial_memory_bytes: None,
        refused: None,
    };
    let component = match runtime.cache().get_or_compile(runtime.engine(), bytes) {
        Ok((_, component)) => component,
        Err(error) => {
            report.refused = Some(error.to_string());
            return report;
        }
    };
    // None only for a component that imports core modules or instances,
    // which the host refuses anyway.
    if let Some(required) = component.resources_required() {
        report.memories = Some(required.num_memories);
        report.initial_memory_bytes = required
            .max_initial_memory_size
            .map(|pages| pages.saturating_mul(WASM_PAGE_BYTES));
    }
    let analysis = analyze(runtime.engine(), &component);
    report.imports = analysis.imports;
    report.exports = analysis.exports;
    if let Ok((kind, contract)) = &analysis.world {
        report.world = Some(kind_name(*kind).to_string());
        report.contract = Some(contract.clone());
    }
    match Plugin::load(
        runtime.engine(),
        runtime.linker(),
        component,
        report.digest.clone(),
        Arc::new(BTreeMap::new()),
        runtime.limits(),
        InstanceMode::Fresh,
    ) {
        Ok(plugin) => {
            report.fuel_budget = Some(plugin.fuel_budget());
            report.windows = plugin.windows().to_vec();
            report.policy_tags = plugin.policy_tags().iter().map(Text::to_string).collect();
            report.scores = plugin.scores().to_vec();
            report.info = Some(plugin.info);
        }
        Err(error) => report.refused = Some(error.to_string()),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_random_streams_count_as_drawing_from_the_seed_at_any_wasi_0_2_version() {
        assert!(draws_from_seed("wasi:random/random@0.2.0"));
        assert!(draws_from_seed("wasi:random/random@0.2.6"));
        assert!(draws_from_seed("wasi:random/insecure@0.2.3"));
        // A fixed value, and no randomness at all.
        assert!(!draws_from_seed("wasi:random/insecure-seed@0.2.6"));
        assert!(!draws_from_seed("wasi:clocks/wall-clock@0.2.6"));
        assert!(!draws_from_seed("vigil:plugin/host@0.6.0"));
    }

    #[test]
    fn an_invocation_record_is_written_with_the_plugins_names_beside_the_calls_fields() {
        let record = InvocationRecord {
            plugin: PluginRef::new("health-score", "0.3.0", "ab".repeat(32)),
            call: "score",
            fuel_used: 1234,
            duration_us: 5,
            logs_dropped: 0,
            outcome: Outcome::Trap {
                reason: "unreachable".into(),
            },
        };
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "plugin": "health-score",
                "version": "0.3.0",
                "digest": "ab".repeat(32),
                "call": "score",
                "fuel_used": 1234,
                "duration_us": 5,
                "logs_dropped": 0,
                "outcome": "trap",
                "reason": "unreachable",
            })
        );
        let shared = record.clone();
        assert!(
            std::ptr::eq(shared.plugin.0, record.plugin.0),
            "a clone shares the names"
        );
    }

    #[test]
    fn lent_histories_come_back_whole_and_only_empty_ones_stay_in_the_slots() {
        let history = |value: f64| {
            let mut history = MetricHistory::default();
            history.record("logins", 1_000, value);
            history
        };
        let mut slots = Vec::new();
        let mut histories = vec![history(1.0), history(2.0), history(3.0)];
        let before = histories.clone();
        lend(&mut slots, &mut histories);
        assert_eq!(slots, before, "the call sees the caller's histories");
        assert!(histories.iter().all(MetricHistory::holds_no_metric));
        give_back(&mut slots, &mut histories);
        assert_eq!(histories, before, "the caller has them back");
        assert_eq!(slots.len(), 3);
        assert!(slots.iter().all(MetricHistory::holds_no_metric));

        // A smaller call reuses the empty slots.
        let mut one = vec![history(4.0)];
        lend(&mut slots, &mut one);
        assert_eq!(slots, vec![history(4.0)]);
        give_back(&mut slots, &mut one);
        assert_eq!(one, vec![history(4.0)]);

        // A slot left holding a history (a call that never gave back)
        // is never handed to a caller in place of an empty one.
        slots.push(history(5.0));
        let mut two = vec![history(6.0), history(7.0)];
        lend(&mut slots, &mut two);
        assert!(two.iter().all(MetricHistory::holds_no_metric));
        give_back(&mut slots, &mut two);
        assert_eq!(two, vec![history(6.0), history(7.0)]);
    }

    #[test]
    fn equal_plugin_names_are_interned_once_and_other_names_apart() {
        let digest = "cd".repeat(32);
        let first = PluginRef::new("interned-once", "1.2.0", digest.as_str());
        let again = PluginRef::new(
            String::from("interned-once"),
            String::from("1.2.0"),
            digest.clone(),
        );
        assert!(std::ptr::eq(first.0, again.0), "the same names, kept once");
        assert_eq!(first, again);
        // Each of the three tells two plugin versions apart.
        for other in [
            PluginRef::new("interned-other", "1.2.0", digest.as_str()),
            PluginRef::new("interned-once", "1.2.1", digest.as_str()),
            PluginRef::new("interned-once", "1.2.0", "ef".repeat(32)),
        ] {
            assert_ne!(first, other);
            assert!(!std::ptr::eq(first.0, other.0));
        }
        assert_eq!(
            (
                again.name.as_str(),
                again.version.as_str(),
                again.digest.as_str()
            ),
            ("interned-once", "1.2.0", digest.as_str())
        );
    }

    fn described(windows: Vec<WindowSpec>) -> Described {
        Described {
            info: PluginInfo {
                name: "windowed".into(),
                version: "0.1.0".into(),
                kind: PluginKind::Scorer,
                description: "Declares windows.".into(),
                subscribes: Vec::new(),
                config_schema: "{}".into(),
                default_fuel: 1_000,
            },
            windows,
            policy_tags: Vec::new(),
            scores: Vec::new(),
        }
    }

    fn spec(metric: &str) -> WindowSpec {
        WindowSpec {
            metric: metric.into(),
            days: 30,
            offset_days: 0,
        }
    }

    #[test]
    fn up_to_64_declared_windows_with_named_metrics_are_accepted() {
        let windows = (0..MAX_DECLARED_WINDOWS)
            .map(|n| spec(&format!("metric-{n}")))
            .collect();
        assert_eq!(described(windows).validate(), Ok(()));
        let long = "m".repeat(MAX_WINDOW_METRIC_BYTES);
        assert_eq!(described(vec![spec(&long)]).validate(), Ok(()));
    }

    #[test]
    fn too_many_windows_an_empty_metric_or_a_long_one_is_refused_by_name() {
        let windows = (0..=MAX_DECLARED_WINDOWS).map(|_| spec("logins")).collect();
        let error = described(windows).validate().unwrap_err();
        assert!(error.contains("declares 65 history windows"), "{error}");

        let error = described(vec![spec("")]).validate().unwrap_err();
        assert!(error.contains("metric ``"), "{error}");

        let long = "m".repeat(MAX_WINDOW_METRIC_BYTES + 1);
        let error = described(vec![spec(&long)]).validate().unwrap_err();
        assert!(error.contains("1–256 bytes"), "{error}");
    }

    fn declaring(kind: PluginKind, policy_tags: &[&str]) -> Described {
        let mut described = described(Vec::new());
        described.info.kind = kind;
        described.policy_tags = policy_tags.iter().map(|tag| tag.to_string()).collect();
        described
    }

    #[test]
    fn conditions_playbooks_and_rulesets_may_declare_up_to_64_distinct_policy_tags() {
        let tags: Vec<String> = (0..MAX_DECLARED_POLICY_TAGS)
            .map(|n| format!("tag-{n}"))
            .collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        for kind in [
            PluginKind::Condition,
            PluginKind::Playbook,
            PluginKind::Ruleset,
        ] {
            assert_eq!(declaring(kind, &tags).validate(), Ok(()));
        }
    }

    #[test]
    fn policy_tags_declared_twice_too_many_empty_or_by_a_scorer_are_refused_by_name() {
        let error = declaring(PluginKind::Condition, &["sox", "hipaa", "sox"])
            .validate()
            .unwrap_err();
        assert!(error.contains("`sox` twice"), "{error}");

        let many: Vec<String> = (0..=MAX_DECLARED_POLICY_TAGS)
            .map(|n| format!("tag-{n}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let error = declaring(PluginKind::Condition, &many)
            .validate()
            .unwrap_err();
        assert!(
            error.contains("declares 65 policy tags; at most 64"),
            "{error}"
        );

        let error = declaring(PluginKind::Condition, &[""])
            .validate()
            .unwrap_err();
        assert!(error.contains("declared policy tag is empty"), "{error}");

        let error = declaring(PluginKind::Scorer, &["sox"])
            .validate()
            .unwrap_err();
        assert!(error.contains("this scorer may declare none"), "{error}");
    }

    fn scoring(kind: PluginKind, scores: Vec<DeclaredScore>) -> Described {
        let mut described = described(Vec::new());
        described.info.kind = kind;
        described.scores = scores;
        described
    }

    fn score(name: &str, bands: &[&str], factors: &[&str]) -> DeclaredScore {
        let texts = |names: &[&str]| names.iter().map(|name| Text::new(name)).collect();
        DeclaredScore {
            name: Text::new(name),
            bands: texts(bands),
            factors: texts(factors),
        }
    }

    #[test]
    fn a_scorer_may_declare_up_to_16_scores_of_up_to_64_bands_and_64_factors() {
        let names: Vec<String> = (0..MAX_DECLARED_BANDS_OR_FACTORS)
            .map(|n| format!("name-{n}"))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let scores = (0..MAX_DECLARED_SCORES)
            .map(|n| score(&format!("score-{n}"), &names, &names))
            .collect();
        assert_eq!(scoring(PluginKind::Scorer, scores).validate(), Ok(()));
        // A score may list no factors, and its bands may share its
        // factors' names.
        let plain = score("health", &["stable", "usage"], &[]);
        assert_eq!(scoring(PluginKind::Scorer, vec![plain]).validate(), Ok(()));
    }

    #[test]
    fn a_ruleset_may_declare_scores_beside_policy_tags_or_none_at_all() {
        let mut described = scoring(
            PluginKind::Ruleset,
            vec![score("health", &["stable"], &["usage"])],
        );
        described.policy_tags = vec!["sox".to_string()];
        assert_eq!(described.validate(), Ok(()));
        assert_eq!(scoring(PluginKind::Ruleset, Vec::new()).validate(), Ok(()));
    }

    #[test]
    fn declared_scores_named_twice_too_many_empty_or_from_another_kind_are_refused_by_name() {
        let refused = |kind, scores| scoring(kind, scores).validate().unwrap_err();
        let health = || score("health", &["stable"], &["usage"]);

        let error = refused(PluginKind::Trigger, vec![health()]);
        assert!(error.contains("this trigger may declare none"), "{error}");

        let error = refused(PluginKind::Scorer, vec![health(), health()]);
        assert!(error.contains("the score `health` twice"), "{error}");

        let many = (0..=MAX_DECLARED_SCORES)
            .map(|n| score(&format!("s{n}"), &["b"], &[]))
            .collect();
        let error = refused(PluginKind::Scorer, many);
        assert!(error.contains("declares 17 scores; at most 16"), "{error}");

        let error = refused(PluginKind::Scorer, vec![score("health", &[], &["usage"])]);
        assert!(error.contains("`health` with no band"), "{error}");

        let error = refused(PluginKind::Scorer, vec![score("", &["stable"], &[])]);
        assert!(error.contains("declared score is empty"), "{error}");

        let error = refused(
            PluginKind::Scorer,
            vec![score("health", &["stable"], &["usage", "fit", "usage"])],
        );
        assert!(
            error.contains("`usage` twice among the factors of the score `health`"),
            "{error}"
        );

        let error = refused(PluginKind::Scorer, vec![score("health", &["ok\n"], &[])]);
        assert!(error.contains("control characters"), "{error}");

        let many: Vec<String> = (0..=MAX_DECLARED_BANDS_OR_FACTORS)
            .map(|n| format!("f{n}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let error = refused(
            PluginKind::Scorer,
            vec![score("health", &["stable"], &many)],
        );
        assert!(
            error.contains("declares 65 factors for the score `health`; at most 64"),
            "{error}"
        );
    }
}
