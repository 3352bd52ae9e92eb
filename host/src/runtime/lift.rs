//! Contract 0.4's to 0.7's packed results lifted out of a guest by the
//! host itself (0.5's score cards and signals are 0.4's, its verdicts
//! name their tags by bit; 0.6's cards name their score, band and factors
//! by position, its signals and verdicts are 0.5's; 0.7's rulings hold
//! 0.6's cards and factors, 0.4's signals and 0.5's verdicts, and are
//! lifted into those versions' types, [`Rulings`]).
//!
//! wasmtime's derived lifting of a record finds each field's offset at run
//! time (`CanonicalAbiInfo::next_field32_size`, a call across crates for
//! every field), and lifts a list one element at a time through
//! `WasmList`, each element's bytes looked up and bounds-checked again: a
//! batch's results are dozens of small records of spans (a signal is four
//! records, a score card's factors two each), so in the bench's pipeline
//! that was about 5 % of the time (perf, BENCHMARKS.md).
//!
//! [`Lifted`] lifts the same types — `packed-score-cards`,
//! `packed-signals`, `packed-verdicts` — as wasmtime would, with the same
//! checks and errors: each list in bounds of the guest's memory and
//! aligned, charged to the call's host-call fuel as wasmtime charges it,
//! every enum and result discriminant checked. It reads each list out of
//! one slice of memory, its elements at offsets fixed at compile time
//! (computed from the field types' ABI and checked against the derived
//! types' sizes, as in `lower.rs`). The text is lifted by wasmtime, and so
//! is a plugin error's message.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

use super::bindings::v0_4::vigil::plugin::types as v4;
use super::bindings::v0_5::vigil::plugin::types as v5;
use super::bindings::v0_6::vigil::plugin::types as v6;
use super::bindings::v0_7::vigil::plugin::types as v7;
use super::lower::{BYTE, LIST, STRING, U32, U64, field, layout, record_size, same_component_type};

/// An export's packed results (`T`, contract 0.4 and later), lifted by the
/// host (see the module docs).
#[derive(Debug)]
pub(crate) struct Lifted<T>(pub(crate) T);

const SPAN_ABI: CanonicalAbiInfo = <v4::Span as ComponentType>::ABI;

layout! {
    /// Field offsets of `span`.
    SPAN: SpanLayout for v4::Span { start: U32, len: U32 }
}

layout! {
    /// Field offsets of `packed-factor`.
    FACTOR: FactorLayout for v4::PackedFactor {
        name: SPAN_ABI,
        weight: U64,
        raw: U64,
        value: U64,
        contribution: U64,
        note: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of `packed-score-card`.
    CARD: CardLayout for v4::PackedScoreCard {
        name: SPAN_ABI,
        value: U64,
        band: SPAN_ABI,
        rag: BYTE,
        factors: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of contract 0.6's `packed-factor`: its name by
    /// position.
    DECLARED_FACTOR: DeclaredFactorLayout for v6::PackedFactor {
        factor: U32,
        weight: U64,
        raw: U64,
        value: U64,
        contribution: U64,
        note: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of contract 0.6's `packed-score-card`: its score and
    /// band by position.
    DECLARED_CARD: DeclaredCardLayout for v6::PackedScoreCard {
        score: U32,
        value: U64,
        band: U32,
        rag: BYTE,
        factors: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of `packed-signal`.
    pub(super) SIGNAL: SignalLayout for v4::PackedSignal {
        name: SPAN_ABI,
        severity: BYTE,
        reason: SPAN_ABI,
        dedup_key: SPAN_ABI,
        cooldown_secs: U32,
    }
}

layout! {
    /// Field offsets of `packed-verdict`.
    VERDICT: VerdictLayout for v4::PackedVerdict {
        applies: BYTE,
        reason: SPAN_ABI,
        policy_tags: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of contract 0.5's `packed-verdict`: its tags by bit.
    TAGGED_VERDICT: TaggedVerdictLayout for v5::PackedVerdict {
        applies: BYTE,
        reason: SPAN_ABI,
        policy_tags: U64,
    }
}

layout! {
    /// Field offsets of `packed-score-cards`.
    CARDS: CardsLayout for v4::PackedScoreCards { text: STRING, results: LIST, factors: LIST }
}

layout! {
    /// Field offsets of contract 0.6's `packed-score-cards`.
    DECLARED_CARDS: DeclaredCardsLayout for v6::PackedScoreCards { text: STRING, results: LIST, factors: LIST }
}

layout! {
    /// Field offsets of contract 0.7's `packed-rulings`.
    RULINGS: RulingsLayout for v7::PackedRulings {
        text: STRING,
        results: LIST,
        cards: LIST,
        factors: LIST,
        signals: LIST,
        verdicts: LIST,
    }
}

layout! {
    /// Field offsets of contract 0.7's `packed-ruling`.
    RULING: RulingLayout for v7::PackedRuling { cards: SPAN_ABI, signals: SPAN_ABI }
}

// 0.7's cards, factors, signals and verdicts are 0.6's, 0.4's and 0.5's
// record for record: lifted at those records' offsets.
const _: () = assert!(DECLARED_CARD.size == <v7::PackedScoreCard as ComponentType>::SIZE32);
const _: () = assert!(DECLARED_FACTOR.size == <v7::PackedFactor as ComponentType>::SIZE32);
const _: () = assert!(SIGNAL.size == <v7::PackedSignal as ComponentType>::SIZE32);
const _: () = assert!(TAGGED_VERDICT.size == <v7::PackedVerdict as ComponentType>::SIZE32);

layout! {
    /// Field offsets of `packed-signals`.
    SIGNALS: SignalsLayout for v4::PackedSignals { text: STRING, results: LIST, signals: LIST }
}

layout! {
    /// Field offsets of `packed-verdicts`.
    VERDICTS: VerdictsLayout for v4::PackedVerdicts { text: STRING, results: LIST, tags: LIST }
}

layout! {
    /// Field offsets of contract 0.5's `packed-verdicts`.
    TAGGED_VERDICTS: TaggedVerdictsLayout for v5::PackedVerdicts { text: STRING, results: LIST }
}

/// The size and alignment in a guest of one `T`, and what wasmtime
/// charges an element of a `list<T>` against the call's host-call fuel
/// (the size of the Rust value it lifts it into).
trait Element: ComponentType + Sized {
    const SIZE: usize = Self::ABI.size32 as usize;
    const ALIGN: usize = Self::ABI.align32 as usize;
    const CHARGE: usize = std::mem::size_of::<Self>();
}

impl<T: ComponentType> Element for T {}

/// Where a result's payload starts: after its one-byte discriminant,
/// aligned to the largest payload's alignment, which is the result's own.
const fn payload_offset(abi: CanonicalAbiInfo) -> usize {
    abi.align32 as usize
}

type Card = Result<v4::PackedScoreCard, v4::PluginError>;
type DeclaredCard = Result<v6::PackedScoreCard, v6::PluginError>;
type SpanResult = Result<v4::Span, v4::PluginError>;
type Verdict = Result<v4::PackedVerdict, v4::PluginError>;
type TaggedVerdict = Result<v5::PackedVerdict, v5::PluginError>;
type RulingResult = Result<v7::PackedRuling, v7::PluginError>;

const _: () = assert!(payload_offset(<Card as ComponentType>::ABI) == 8);
const _: () = assert!(payload_offset(<DeclaredCard as ComponentType>::ABI) == 8);
const _: () = assert!(payload_offset(<SpanResult as ComponentType>::ABI) == 4);
const _: () = assert!(payload_offset(<Verdict as ComponentType>::ABI) == 4);
const _: () = assert!(payload_offset(<TaggedVerdict as ComponentType>::ABI) == 8);
const _: () = assert!(payload_offset(<RulingResult as ComponentType>::ABI) == 4);

/// The four bytes at `at` of `bytes`, as a little-endian `u32`.
#[inline]
fn u32_at(bytes: &[u8], at: usize) -> wasmtime::Result<u32> {
    match bytes.get(at..).and_then(<[u8]>::first_chunk::<4>) {
        Some(word) => Ok(u32::from_le_bytes(*word)),
        None => Err(out_of_record()),
    }
}

/// The eight bytes at `at` of `bytes`, as a little-endian `f64`.
#[inline]
fn f64_at(bytes: &[u8], at: usize) -> wasmtime::Result<f64> {
    match bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        Some(word) => Ok(f64::from_le_bytes(*word)),
        None => Err(out_of_record()),
    }
}

/// The eight bytes at `at` of `bytes`, as a little-endian `u64`.
#[inline]
fn u64_at(bytes: &[u8], at: usize) -> wasmtime::Result<u64> {
    match bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        Some(word) => Ok(u64::from_le_bytes(*word)),
        None => Err(out_of_record()),
    }
}

/// The byte at `at` of `bytes`.
#[inline]
fn byte_at(bytes: &[u8], at: usize) -> wasmtime::Result<u8> {
    bytes.get(at).copied().ok_or_else(out_of_record)
}

/// A read past the end of a record's bytes, which the layouts' compile-time
/// checks rule out.
#[cold]
fn out_of_record() -> wasmtime::Error {
    wasmtime::format_err!("a packed result's field lies outside its record")
}

/// The span at `at` of `bytes`.
#[inline]
fn span_at(bytes: &[u8], at: usize) -> wasmtime::Result<v4::Span> {
    Ok(v4::Span {
        start: u32_at(bytes, at + SPAN.start)?,
        len: u32_at(bytes, at + SPAN.len)?,
    })
}

/// The `rag` at `at` of `bytes` (cases in the contract's order).
#[inline]
fn rag_at(bytes: &[u8], at: usize) -> wasmtime::Result<v4::Rag> {
    match byte_at(bytes, at)? {
        0 => Ok(v4::Rag::Red),
        1 => Ok(v4::Rag::Yellow),
        2 => Ok(v4::Rag::Green),
        other => Err(bad_discriminant(other)),
    }
}

/// The `severity` at `at` of `bytes` (cases in the contract's order).
#[inline]
fn severity_at(bytes: &[u8], at: usize) -> wasmtime::Result<v4::Severity> {
    match byte_at(bytes, at)? {
        0 => Ok(v4::Severity::Info),
        1 => Ok(v4::Severity::Low),
        2 => Ok(v4::Severity::Medium),
        3 => Ok(v4::Severity::High),
        4 => Ok(v4::Severity::Critical),
        other => Err(bad_discriminant(other)),
    }
}

/// wasmtime's error for an enum case that does not exist.
#[cold]
fn bad_discriminant(found: u8) -> wasmtime::Error {
    wasmtime::format_err!("unexpected discriminant: {found}")
}

/// The list whose pointer and length are at `at` of `record`: its bytes in
/// the guest's memory and its length, checked and charged as wasmtime's
/// `WasmList` does.
fn list_bytes<'a, T: Element>(
    cx: &mut LiftContext<'a>,
    record: &[u8],
    at: usize,
) -> wasmtime::Result<(&'a [u8], usize)> {
    let ptr = usize::try_from(u32_at(record, at)?)?;
    let len = usize::try_from(u32_at(record, at + 4)?)?;
    let memory = cx.memory();
    let bytes = len
        .checked_mul(T::SIZE)
        .and_then(|size| Some(ptr..ptr.checked_add(size)?))
        .and_then(|range| memory.get(range));
    let Some(bytes) = bytes else {
        wasmtime::bail!("list pointer/length out of bounds of memory");
    };
    cx.consume_fuel_array(len, T::CHARGE)?;
    if ptr % T::ALIGN != 0 {
        wasmtime::bail!("list pointer is not aligned");
    }
    Ok((bytes, len))
}

/// Lifts the `list<T>` at `at` of `record`, each element's bytes by `lift`.
fn lift_list<'a, T: Element>(
    cx: &mut LiftContext<'a>,
    record: &[u8],
    at: usize,
    lift: impl FnMut(&mut LiftContext<'a>, &[u8]) -> wasmtime::Result<T>,
) -> wasmtime::Result<Vec<T>> {
    lift_list_into::<T, T>(cx, record, at, lift)
}

/// Lifts the `list<T>` at `at` of `record` into `U`s (an earlier
/// version's record of the same structure), each element's bytes by
/// `lift`.
fn lift_list_into<'a, T: Element, U>(
    cx: &mut LiftContext<'a>,
    record: &[u8],
    at: usize,
    mut lift: impl FnMut(&mut LiftContext<'a>, &[u8]) -> wasmtime::Result<U>,
) -> wasmtime::Result<Vec<U>> {
    let (bytes, len) = list_bytes::<T>(cx, record, at)?;
    let mut list = Vec::with_capacity(len);
    for element in bytes.chunks_exact(T::SIZE) {
        list.push(lift(cx, element)?);
    }
    Ok(list)
}

/// The interface type of field `index` of record type `ty`.
fn field_type(
    cx: &LiftContext<'_>,
    ty: InterfaceType,
    index: usize,
) -> wasmtime::Result<InterfaceType> {
    let InterfaceType::Record(record) = ty else {
        wasmtime::bail!("expected a record, found {ty:?}");
    };
    match cx.types[record].fields.get(index) {
        Some(field) => Ok(field.ty),
        None => wasmtime::bail!("the record has no field {index}"),
    }
}

/// The error type of the results listed in field `index` of record type
/// `ty` (a `list<result<_, plugin-error>>`).
fn error_type(
    cx: &LiftContext<'_>,
    ty: InterfaceType,
    index: usize,
) -> wasmtime::Result<InterfaceType> {
    let InterfaceType::List(list) = field_type(cx, ty, index)? else {
        wasmtime::bail!("field {index} is not a list");
    };
    let InterfaceType::Result(result) = cx.types[list].element else {
        wasmtime::bail!("field {index} does not list results");
    };
    match cx.types[result].err {
        Some(error) => Ok(error),
        None => wasmtime::bail!("field {index}'s results carry no error"),
    }
}

/// Lifts one `result<T, plugin-error>` from `bytes`: `ok` lifts the
/// payload of an `ok`; an error is lifted by wasmtime as `error` (the
/// type found by [`error_type`], looked up on the first one only), into
/// the contract version's own `plugin-error`, `E`.
fn lift_result<'a, T, E: Lift>(
    cx: &mut LiftContext<'a>,
    bytes: &[u8],
    payload: usize,
    error: &mut dyn FnMut(&LiftContext<'a>) -> wasmtime::Result<InterfaceType>,
    ok: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
) -> wasmtime::Result<Result<T, E>> {
    let Some(value) = bytes.get(payload..) else {
        return Err(out_of_record());
    };
    match byte_at(bytes, 0)? {
        0 => Ok(Ok(ok(value)?)),
        1 => {
            let ty = error(cx)?;
            let Some(value) = value.get(..E::SIZE32) else {
                return Err(out_of_record());
            };
            Ok(Err(E::linear_lift_from_memory(cx, ty, value)?))
        }
        _ => wasmtime::bail!("invalid expected discriminant"),
    }
}

/// The text at `at` of `record`, lifted by wasmtime.
fn text_at(cx: &mut LiftContext<'_>, record: &[u8], at: usize) -> wasmtime::Result<String> {
    let size = <String as ComponentType>::SIZE32;
    match record.get(at..at + size) {
        Some(pair) => String::linear_lift_from_memory(cx, InterfaceType::String, pair),
        None => Err(out_of_record()),
    }
}

/// The error type of a call's results, looked up the first time one is
/// needed.
struct ErrorType {
    record: InterfaceType,
    field: usize,
    found: Option<InterfaceType>,
}

impl ErrorType {
    fn of(record: InterfaceType, field: usize) -> Self {
        Self {
            record,
            field,
            found: None,
        }
    }

    fn get(&mut self, cx: &LiftContext<'_>) -> wasmtime::Result<InterfaceType> {
        match self.found {
            Some(ty) => Ok(ty),
            None => {
                let ty = error_type(cx, self.record, self.field)?;
                self.found = Some(ty);
                Ok(ty)
            }
        }
    }
}

/// Implements `Lift` for `Lifted<$ty>` with `$lift`; the flat form (which
/// a 0.4 export never returns: its results are records of three
/// pointer pairs, returned through memory) is lifted by wasmtime.
macro_rules! lifted {
    ($ty:ty, $lift:expr) => {
        same_component_type!(Lifted<$ty> => $ty);

        // SAFETY: the bytes are read as wasmtime's derived lifting of `$ty`
        // reads them (the layouts are checked against it at compile time),
        // every list bounds-checked against the guest's memory.
        #[allow(unsafe_code)]
        unsafe impl Lift for Lifted<$ty> {
            fn linear_lift_from_flat(
                cx: &mut LiftContext<'_>,
                ty: InterfaceType,
                src: &Self::Lower,
            ) -> wasmtime::Result<Self> {
                Ok(Lifted(<$ty as Lift>::linear_lift_from_flat(cx, ty, src)?))
            }

            fn linear_lift_from_memory(
                cx: &mut LiftContext<'_>,
                ty: InterfaceType,
                bytes: &[u8],
            ) -> wasmtime::Result<Self> {
                let lift: fn(&mut LiftContext<'_>, InterfaceType, &[u8]) -> wasmtime::Result<$ty> =
                    $lift;
                Ok(Lifted(lift(cx, ty, bytes)?))
            }
        }
    };
}

lifted!(v4::PackedScoreCards, |cx, ty, record| {
    let text = text_at(cx, record, CARDS.text)?;
    let mut error = ErrorType::of(ty, 1);
    let results = lift_list::<Card>(cx, record, CARDS.results, |cx, bytes| {
        lift_result(
            cx,
            bytes,
            payload_offset(<Card as ComponentType>::ABI),
            &mut |cx| error.get(cx),
            |card| {
                Ok(v4::PackedScoreCard {
                    name: span_at(card, CARD.name)?,
                    value: f64_at(card, CARD.value)?,
                    band: span_at(card, CARD.band)?,
                    rag: rag_at(card, CARD.rag)?,
                    factors: span_at(card, CARD.factors)?,
                })
            },
        )
    })?;
    let factors = lift_list::<v4::PackedFactor>(cx, record, CARDS.factors, |_, factor| {
        Ok(v4::PackedFactor {
            name: span_at(factor, FACTOR.name)?,
            weight: f64_at(factor, FACTOR.weight)?,
            raw: f64_at(factor, FACTOR.raw)?,
            value: f64_at(factor, FACTOR.value)?,
            contribution: f64_at(factor, FACTOR.contribution)?,
            note: span_at(factor, FACTOR.note)?,
        })
    })?;
    Ok(v4::PackedScoreCards {
        text,
        results,
        factors,
    })
});

/// A span of contract 0.6's, from the 0.4 span at `at` of `bytes` (the
/// same record).
#[inline]
fn v6_span_at(bytes: &[u8], at: usize) -> wasmtime::Result<v6::Span> {
    let span = span_at(bytes, at)?;
    Ok(v6::Span {
        start: span.start,
        len: span.len,
    })
}

/// The `rag` of contract 0.6 at `at` of `bytes`.
#[inline]
fn v6_rag_at(bytes: &[u8], at: usize) -> wasmtime::Result<v6::Rag> {
    Ok(match rag_at(bytes, at)? {
        v4::Rag::Red => v6::Rag::Red,
        v4::Rag::Yellow => v6::Rag::Yellow,
        v4::Rag::Green => v6::Rag::Green,
    })
}

lifted!(v6::PackedScoreCards, |cx, ty, record| {
    let text = text_at(cx, record, DECLARED_CARDS.text)?;
    let mut error = ErrorType::of(ty, 1);
    let results = lift_list::<DeclaredCard>(cx, record, DECLARED_CARDS.results, |cx, bytes| {
        lift_result(
            cx,
            bytes,
            payload_offset(<DeclaredCard as ComponentType>::ABI),
            &mut |cx| error.get(cx),
            declared_card_at,
        )
    })?;
    let factors =
        lift_list::<v6::PackedFactor>(cx, record, DECLARED_CARDS.factors, |_, factor| {
            declared_factor_at(factor)
        })?;
    Ok(v6::PackedScoreCards {
        text,
        results,
        factors,
    })
});

lifted!(v4::PackedSignals, |cx, ty, record| {
    let text = text_at(cx, record, SIGNALS.text)?;
    let mut error = ErrorType::of(ty, 1);
    let results = lift_list::<SpanResult>(cx, record, SIGNALS.results, |cx, bytes| {
        let payload = payload_offset(<SpanResult as ComponentType>::ABI);
        lift_result(cx, bytes, payload, &mut |cx| error.get(cx), |span| {
            span_at(span, 0)
        })
    })?;
    let signals =
        lift_list::<v4::PackedSignal>(cx, record, SIGNALS.signals, |_, signal| signal_at(signal))?;
    Ok(v4::PackedSignals {
        text,
        results,
        signals,
    })
});

lifted!(v4::PackedVerdicts, |cx, ty, record| {
    let text = text_at(cx, record, VERDICTS.text)?;
    let mut error = ErrorType::of(ty, 1);
    let results = lift_list::<Verdict>(cx, record, VERDICTS.results, |cx, bytes| {
        let payload = payload_offset(<Verdict as ComponentType>::ABI);
        lift_result(cx, bytes, payload, &mut |cx| error.get(cx), |verdict| {
            Ok(v4::PackedVerdict {
                applies: byte_at(verdict, VERDICT.applies)? != 0,
                reason: span_at(verdict, VERDICT.reason)?,
                policy_tags: span_at(verdict, VERDICT.policy_tags)?,
            })
        })
    })?;
    let tags = lift_list::<v4::Span>(cx, record, VERDICTS.tags, |_, span| span_at(span, 0))?;
    Ok(v4::PackedVerdicts {
        text,
        results,
        tags,
    })
});

lifted!(v5::PackedVerdicts, |cx, ty, record| {
    let text = text_at(cx, record, TAGGED_VERDICTS.text)?;
    let mut error = ErrorType::of(ty, 1);
    let results = lift_list::<TaggedVerdict>(cx, record, TAGGED_VERDICTS.results, |cx, bytes| {
        let payload = payload_offset(<TaggedVerdict as ComponentType>::ABI);
        lift_result(
            cx,
            bytes,
            payload,
            &mut |cx| error.get(cx),
            tagged_verdict_at,
        )
    })?;
    Ok(v5::PackedVerdicts { text, results })
});

/// A contract 0.7 ruleset's `packed-rulings`, lifted into the records of
/// the versions its parts come from (0.6's cards and factors, 0.4's
/// signals, 0.5's verdicts), which `unpack` reads.
#[derive(Debug)]
pub(crate) struct Rulings {
    /// `text`.
    pub(crate) text: String,
    /// `results`.
    pub(crate) results: Vec<RulingResult>,
    /// `cards`.
    pub(crate) cards: Vec<v6::PackedScoreCard>,
    /// `factors`.
    pub(crate) factors: Vec<v6::PackedFactor>,
    /// `signals`.
    pub(crate) signals: Vec<v4::PackedSignal>,
    /// `verdicts`.
    pub(crate) verdicts: Vec<v5::PackedVerdict>,
}

same_component_type!(Lifted<Rulings> => v7::PackedRulings);

/// A 0.6 card from `bytes`, a card's record (0.6's and 0.7's alike).
fn declared_card_at(card: &[u8]) -> wasmtime::Result<v6::PackedScoreCard> {
    Ok(v6::PackedScoreCard {
        score: u32_at(card, DECLARED_CARD.score)?,
        value: f64_at(card, DECLARED_CARD.value)?,
        band: u32_at(card, DECLARED_CARD.band)?,
        rag: v6_rag_at(card, DECLARED_CARD.rag)?,
        factors: v6_span_at(card, DECLARED_CARD.factors)?,
    })
}

/// A 0.6 factor from `bytes`, a factor's record (0.6's and 0.7's alike).
fn declared_factor_at(factor: &[u8]) -> wasmtime::Result<v6::PackedFactor> {
    Ok(v6::PackedFactor {
        factor: u32_at(factor, DECLARED_FACTOR.factor)?,
        weight: f64_at(factor, DECLARED_FACTOR.weight)?,
        raw: f64_at(factor, DECLARED_FACTOR.raw)?,
        value: f64_at(factor, DECLARED_FACTOR.value)?,
        contribution: f64_at(factor, DECLARED_FACTOR.contribution)?,
        note: v6_span_at(factor, DECLARED_FACTOR.note)?,
    })
}

/// A 0.4 signal from `bytes`, a signal's record (0.4's to 0.7's alike).
fn signal_at(signal: &[u8]) -> wasmtime::Result<v4::PackedSignal> {
    Ok(v4::PackedSignal {
        name: span_at(signal, SIGNAL.name)?,
        severity: severity_at(signal, SIGNAL.severity)?,
        reason: span_at(signal, SIGNAL.reason)?,
        dedup_key: span_at(signal, SIGNAL.dedup_key)?,
        cooldown_secs: u32_at(signal, SIGNAL.cooldown_secs)?,
    })
}

/// A 0.5 verdict from `bytes`, a verdict's record (0.5's to 0.7's alike).
fn tagged_verdict_at(verdict: &[u8]) -> wasmtime::Result<v5::PackedVerdict> {
    let reason = span_at(verdict, TAGGED_VERDICT.reason)?;
    Ok(v5::PackedVerdict {
        applies: byte_at(verdict, TAGGED_VERDICT.applies)? != 0,
        reason: v5::Span {
            start: reason.start,
            len: reason.len,
        },
        policy_tags: u64_at(verdict, TAGGED_VERDICT.policy_tags)?,
    })
}

/// A 0.7 span from the 0.4 span at `at` of `bytes` (the same record).
#[inline]
fn v7_span_at(bytes: &[u8], at: usize) -> wasmtime::Result<v7::Span> {
    let span = span_at(bytes, at)?;
    Ok(v7::Span {
        start: span.start,
        len: span.len,
    })
}

// SAFETY: the bytes are read as wasmtime's derived lifting of
// `packed-rulings` reads them (the layouts are checked against it at
// compile time), every list bounds-checked against the guest's memory.
#[allow(unsafe_code)]
unsafe impl Lift for Lifted<Rulings> {
    fn linear_lift_from_flat(
        _cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        _src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        // A result of more than one flat value comes back through memory,
        // and a record of six lists is twelve: never lifted from flat.
        wasmtime::bail!("`packed-rulings` is returned through memory, not flat")
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        record: &[u8],
    ) -> wasmtime::Result<Self> {
        let text = text_at(cx, record, RULINGS.text)?;
        let mut error = ErrorType::of(ty, 1);
        let results = lift_list::<RulingResult>(cx, record, RULINGS.results, |cx, bytes| {
            let payload = payload_offset(<RulingResult as ComponentType>::ABI);
            lift_result(cx, bytes, payload, &mut |cx| error.get(cx), |ruling| {
                Ok(v7::PackedRuling {
                    cards: v7_span_at(ruling, RULING.cards)?,
                    signals: v7_span_at(ruling, RULING.signals)?,
                })
            })
        })?;
        let cards =
            lift_list_into::<v7::PackedScoreCard, _>(cx, record, RULINGS.cards, |_, card| {
                declared_card_at(card)
            })?;
        let factors =
            lift_list_into::<v7::PackedFactor, _>(cx, record, RULINGS.factors, |_, factor| {
                declared_factor_at(factor)
            })?;
        let signals =
            lift_list_into::<v7::PackedSignal, _>(cx, record, RULINGS.signals, |_, signal| {
                signal_at(signal)
            })?;
        let verdicts =
            lift_list_into::<v7::PackedVerdict, _>(cx, record, RULINGS.verdicts, |_, verdict| {
                tagged_verdict_at(verdict)
            })?;
        Ok(Lifted(Rulings {
            text,
            results,
            cards,
            factors,
            signals,
            verdicts,
        }))
    }
}
