//! Contexts (and history windows, and a condition's packed check items)
//! lowered into a guest by the host itself.
//!
//! Contract 0.3 and 0.4 batches go as [`Packed`]: every string of the batch in one
//! text and the contexts, attributes and scores in one list each, four
//! allocations in the guest per call. Contract 0.2 batches go as a list of
//! [`Lowered`] contexts, one copy of each record:
//!
//! wasmtime's derived lowering of a record writes field by field, and every
//! write looks up the guest's memory again (`options_memory_mut`): for a
//! context that is some thirty lookups, the largest single cost of a batch
//! call on the host side (perf over `cargo xtask profile vigil`). [`Lowered`]
//! lowers the same `context` type, byte for byte where the guest can read
//! it, making the same `realloc` calls in the same order (so the guest's
//! allocator, its fuel and its memory end up as they would), but builds each
//! record in a host buffer and copies it into the guest once.
//!
//! The canonical layout is computed from the field types' own ABI
//! information at compile time (`layout!`), and checked against the
//! derived type's size, so a contract change that this code does not
//! follow fails to compile rather than lowering garbage.

use std::mem::MaybeUninit;

use wasmtime::ValRaw;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext, wasmtime_environ,
};
use wasmtime::component::{ComponentType, Lower};

use super::bindings::MetricWindow;
use super::bindings::types::{Account, Attribute, Context, Event, ScoreSummary, Severity};
/// The contract 0.3 `packed-contexts` types, whose layouts the packing
/// follows.
use super::bindings::v0_3::vigil::plugin::types as packed;
/// The contract 0.4 types of a condition's packed check items.
use super::bindings::v0_4::vigil::plugin::types as v4;
use super::lift::SIGNAL;
use super::results::CheckItem;

/// The longest string the canonical ABI lowers (wasmtime's limit).
const MAX_STRING_BYTES: usize = (1 << 31) - 1;

/// Where a field goes in a record: its offset, then the record's size so far.
pub(super) const fn field(offset: usize, abi: CanonicalAbiInfo) -> (usize, usize) {
    let align = abi.align32 as usize;
    let at = offset.div_ceil(align) * align;
    (at, at + abi.size32 as usize)
}

/// A record's size: its fields' end rounded up to its alignment.
pub(super) const fn record_size(end: usize, abi: CanonicalAbiInfo) -> usize {
    let align = abi.align32 as usize;
    end.div_ceil(align) * align
}

pub(super) const STRING: CanonicalAbiInfo = <String as ComponentType>::ABI;
pub(super) const LIST: CanonicalAbiInfo = <Vec<Attribute> as ComponentType>::ABI;
pub(super) const BYTE: CanonicalAbiInfo = <u8 as ComponentType>::ABI;
pub(super) const U32: CanonicalAbiInfo = <u32 as ComponentType>::ABI;
pub(super) const U64: CanonicalAbiInfo = <u64 as ComponentType>::ABI;
const OPTION_S64: CanonicalAbiInfo = <Option<i64> as ComponentType>::ABI;
/// Where an `option<s64>`'s value sits after its discriminant.
const OPTION_S64_VALUE: usize = field(1, U64).0;

/// Declares the layout of a contract record: a struct of its field
/// offsets, computed in field order from each field's ABI, and its size,
/// checked against the size wasmtime derives for `$ty` (so a field added,
/// removed or retyped in the contract fails to build here). A visibility
/// before the name shares the layout with the other runtime modules.
macro_rules! layout {
    ($(#[$doc:meta])* $vis:vis $layout:ident: $name:ident for $ty:ty { $($field:ident: $abi:expr),* $(,)? }) => {
        $(#[$doc])*
        $vis struct $name {
            $($vis $field: usize,)*
            $vis size: usize,
        }

        $(#[$doc])*
        $vis const $layout: $name = {
            let end = 0;
            $(let ($field, end) = field(end, $abi);)*
            $name {
                $($field,)*
                size: record_size(end, <$ty as ComponentType>::ABI),
            }
        };

        const _: () = assert!($layout.size == <$ty as ComponentType>::SIZE32);
    };
}

pub(super) use layout;

layout! {
    /// Field offsets of `account`.
    ACCOUNT: AccountLayout for Account {
        id: STRING,
        name: STRING,
        tier: BYTE,
        industry: BYTE,
        licensed_seats: U32,
        active_users: U32,
        arr: U64,
        contract_start: OPTION_S64,
        renewal_date: OPTION_S64,
        attributes: LIST,
    }
}

layout! {
    /// Field offsets of `attribute`.
    ATTRIBUTE: AttributeLayout for Attribute { key: STRING, value: STRING }
}

layout! {
    /// Field offsets of `event`.
    EVENT: EventLayout for Event {
        id: STRING,
        account_id: STRING,
        kind: STRING,
        occurred_at: U64,
        payload: STRING,
    }
}

layout! {
    /// Field offsets of `score-summary`.
    SCORE: ScoreLayout for ScoreSummary {
        name: STRING,
        value: U64,
        band: STRING,
        rag: BYTE,
    }
}

layout! {
    /// Field offsets of `metric-window`.
    WINDOW: WindowLayout for MetricWindow {
        count: U32,
        sum: U64,
        min: U64,
        max: U64,
        first: U64,
        last: U64,
    }
}

layout! {
    /// Field offsets of `context`.
    CONTEXT: ContextLayout for Context {
        account: <Account as ComponentType>::ABI,
        event: <Event as ComponentType>::ABI,
        now: U64,
        scores: LIST,
    }
}

/// A context to lower into a guest: the contract's `context` type, lowered
/// with one copy per record (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lowered<'a>(pub(crate) &'a Context);

/// Lowers every context of `contexts` this way.
pub(crate) fn lowered(contexts: &[Context]) -> Vec<Lowered<'_>> {
    contexts.iter().map(Lowered).collect()
}

/// Makes `$wrapper` the same component type as `$ty`.
macro_rules! same_component_type {
    ($wrapper:ty => $ty:ty) => {
        // SAFETY: `$wrapper` is the component type `$ty` is: it takes
        // `$ty`'s ABI, flat representation and type check.
        #[allow(unsafe_code)]
        unsafe impl ComponentType for $wrapper {
            type Lower = <$ty as ComponentType>::Lower;

            const ABI: CanonicalAbiInfo = <$ty as ComponentType>::ABI;

            fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
                <$ty as ComponentType>::typecheck(ty, types)
            }
        }
    };
}

pub(super) use same_component_type;

same_component_type!(Lowered<'_> => Context);

// SAFETY: this writes the record wasmtime's derived lowering of `Context`
// writes (the layout is checked against it at compile time), and the
// strings and lists it points to, allocated through the guest's `realloc`
// (whose answer wasmtime bounds-checks); every copy is bounds-checked.
#[allow(unsafe_code)]
unsafe impl Lower for Lowered<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        // A context is never passed flat (it has too many fields); this is
        // the derived lowering, for completeness.
        self.0.linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        if !matches!(
            cx.options().string_encoding,
            wasmtime_environ::component::StringEncoding::Utf8
        ) {
            // Only UTF-8 strings are copied as they are; the derived
            // lowering transcodes the rest.
            return self.0.linear_lower_to_memory(cx, ty, offset);
        }
        let ctx = self.0;
        let mut record = [0u8; CONTEXT.size];
        let mut pending = Pending::new();
        // The same realloc calls, in field order, as the derived lowering.
        let account = &ctx.account;
        let at = CONTEXT.account;
        put_string(cx, &mut pending, &mut record, at + ACCOUNT.id, &account.id)?;
        put_string(
            cx,
            &mut pending,
            &mut record,
            at + ACCOUNT.name,
            &account.name,
        )?;
        put(&mut record, at + ACCOUNT.tier, &[account.tier as u8]);
        put(
            &mut record,
            at + ACCOUNT.industry,
            &[account.industry as u8],
        );
        put(
            &mut record,
            at + ACCOUNT.licensed_seats,
            &account.licensed_seats.to_le_bytes(),
        );
        put(
            &mut record,
            at + ACCOUNT.active_users,
            &account.active_users.to_le_bytes(),
        );
        put(&mut record, at + ACCOUNT.arr, &account.arr.to_le_bytes());
        put_option(
            &mut record,
            at + ACCOUNT.contract_start,
            account.contract_start,
        );
        put_option(&mut record, at + ACCOUNT.renewal_date, account.renewal_date);
        put_list(
            cx,
            &mut pending,
            &mut record,
            at + ACCOUNT.attributes,
            &account.attributes,
            <Attribute as ComponentType>::ALIGN32,
            |cx, pending, element: &mut [u8; ATTRIBUTE.size], attribute| {
                put_string(cx, pending, element, ATTRIBUTE.key, &attribute.key)?;
                put_string(cx, pending, element, ATTRIBUTE.value, &attribute.value)
            },
        )?;

        let event = &ctx.event;
        let at = CONTEXT.event;
        put_string(cx, &mut pending, &mut record, at + EVENT.id, &event.id)?;
        put_string(
            cx,
            &mut pending,
            &mut record,
            at + EVENT.account_id,
            &event.account_id,
        )?;
        put_string(cx, &mut pending, &mut record, at + EVENT.kind, &event.kind)?;
        put(
            &mut record,
            at + EVENT.occurred_at,
            &event.occurred_at.to_le_bytes(),
        );
        put_string(
            cx,
            &mut pending,
            &mut record,
            at + EVENT.payload,
            &event.payload,
        )?;

        put(&mut record, CONTEXT.now, &ctx.now.to_le_bytes());
        put_list(
            cx,
            &mut pending,
            &mut record,
            CONTEXT.scores,
            &ctx.scores,
            <ScoreSummary as ComponentType>::ALIGN32,
            |cx, pending, element: &mut [u8; SCORE.size], score| {
                put_string(cx, pending, element, SCORE.name, &score.name)?;
                put(element, SCORE.value, &score.value.to_bits().to_le_bytes());
                put_string(cx, pending, element, SCORE.band, &score.band)?;
                put(element, SCORE.rag, &[score.rag as u8]);
                Ok(())
            },
        )?;
        pending.push(cx, offset, &record)?;
        pending.flush(cx)
    }
}

/// Copies `bytes` into `record` at `at` (every offset is a constant within
/// the record, so the range is always there).
fn put(record: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = record.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

/// An `option<s64>`: the discriminant, then the value when there is one.
fn put_option(record: &mut [u8], at: usize, value: Option<i64>) {
    match value {
        None => put(record, at, &[0]),
        Some(value) => {
            put(record, at, &[1]);
            put(record, at + OPTION_S64_VALUE, &value.to_le_bytes());
        }
    }
}

/// A (pointer, length) pair, as 32-bit little-endian words.
fn put_pair(record: &mut [u8], at: usize, ptr: usize, len: usize) -> wasmtime::Result<()> {
    put(record, at, &u32::try_from(ptr)?.to_le_bytes());
    put(record, at + 4, &u32::try_from(len)?.to_le_bytes());
    Ok(())
}

/// String copies into the guest waiting for one look-up of its memory:
/// each string's `realloc` comes first, then the copies together.
struct Pending<'s> {
    copies: [(usize, &'s [u8]); Pending::CAPACITY],
    len: usize,
}

impl<'s> Pending<'s> {
    /// More than a context's strings with a few attributes; past that the
    /// copies are made in groups.
    const CAPACITY: usize = 16;

    fn new() -> Self {
        Self {
            copies: [(0, &[]); Pending::CAPACITY],
            len: 0,
        }
    }

    /// Copies `bytes` to `at` in the guest's memory, now or with the rest.
    fn push<T>(
        &mut self,
        cx: &mut LowerContext<'_, T>,
        at: usize,
        bytes: &'s [u8],
    ) -> wasmtime::Result<()> {
        if self.len == Self::CAPACITY {
            self.flush(cx)?;
        }
        if let Some(slot) = self.copies.get_mut(self.len) {
            *slot = (at, bytes);
            self.len += 1;
        }
        Ok(())
    }

    /// Makes every copy waiting, with one look-up of the guest's memory.
    fn flush<T>(&mut self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<()> {
        let memory = cx.as_slice_mut();
        for (at, bytes) in self.copies.get(..self.len).unwrap_or(&[]) {
            copy_into(memory, *at, bytes)?;
        }
        self.len = 0;
        Ok(())
    }
}

/// Allocates room for `text` in the guest (through its `realloc`, as
/// wasmtime does for every string, even an empty one), queues the copy and
/// points `record` at it.
fn put_string<'s, T>(
    cx: &mut LowerContext<'_, T>,
    pending: &mut Pending<'s>,
    record: &mut [u8],
    at: usize,
    text: &'s str,
) -> wasmtime::Result<()> {
    if text.len() > MAX_STRING_BYTES {
        wasmtime::bail!(
            "string length of {} too large to copy into wasm",
            text.len()
        );
    }
    let ptr = cx.realloc(0, 0, 1, text.len())?;
    pending.push(cx, ptr, text.as_bytes())?;
    put_pair(record, at, ptr, text.len())
}

/// Allocates a list of `items` in the guest (elements of `SIZE` bytes,
/// aligned to `align`), fills each element in a host buffer, copies it in
/// once, and points `record` at the list.
fn put_list<'s, T, I, const SIZE: usize>(
    cx: &mut LowerContext<'_, T>,
    pending: &mut Pending<'s>,
    record: &mut [u8],
    at: usize,
    items: &'s [I],
    align: u32,
    mut fill: impl FnMut(
        &mut LowerContext<'_, T>,
        &mut Pending<'s>,
        &mut [u8; SIZE],
        &'s I,
    ) -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    let bytes = items
        .len()
        .checked_mul(SIZE)
        .ok_or_else(|| wasmtime::format_err!("size overflow copying a list"))?;
    let ptr = cx.realloc(0, 0, align, bytes)?;
    for (index, item) in items.iter().enumerate() {
        let mut element = [0u8; SIZE];
        fill(cx, pending, &mut element, item)?;
        write(cx, ptr + index * SIZE, &element)?;
    }
    put_pair(record, at, ptr, items.len())
}

/// Copies `bytes` into the guest's memory at `at`.
fn write<T>(cx: &mut LowerContext<'_, T>, at: usize, bytes: &[u8]) -> wasmtime::Result<()> {
    copy_into(cx.as_slice_mut(), at, bytes)
}

/// Copies `bytes` into `memory` at `at`, if they fit.
fn copy_into(memory: &mut [u8], at: usize, bytes: &[u8]) -> wasmtime::Result<()> {
    region(memory, at, bytes.len())?.copy_from_slice(bytes);
    Ok(())
}

/// The `len` bytes of `memory` at `at`, or an error if they do not fit.
fn region(memory: &mut [u8], at: usize, len: usize) -> wasmtime::Result<&mut [u8]> {
    memory
        .get_mut(at..)
        .and_then(|memory| memory.get_mut(..len))
        .ok_or_else(|| {
            wasmtime::format_err!("lowering into a guest: pointer out of bounds of memory")
        })
}

/// A `history.window` result, lowered with one copy: a plugin asks for a
/// dozen windows an event, and the derived lowering looks up the guest's
/// memory once per field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoweredWindow(pub(crate) MetricWindow);

same_component_type!(LoweredWindow => MetricWindow);

// SAFETY: writes the record the derived lowering of `MetricWindow` writes
// (the layout is checked against it at compile time).
#[allow(unsafe_code)]
unsafe impl Lower for LoweredWindow {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.0.linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let mut record = [0u8; WINDOW.size];
        window_record(&mut record, &self.0);
        write(cx, offset, &record)
    }
}

/// A list of windows — what `batching.begin` returns (contract 0.3), or
/// every item's windows sent with a batch (0.4) — lowered with one copy
/// for the whole list: its elements are built in a host buffer.
///
/// An empty list is not allocated: it points at the element alignment
/// with no `realloc` call, which is what a `wit-bindgen` guest's `realloc`
/// answers for zero bytes (so its memory ends up the same), and a valid
/// empty list for any guest. Most plugins declare no windows, and this
/// keeps `begin` from calling into their allocator for every item.
#[derive(Debug, Clone)]
pub(crate) struct LoweredWindows(pub(crate) Vec<MetricWindow>);

same_component_type!(LoweredWindows => Vec<MetricWindow>);

// SAFETY: writes the list the derived lowering of `Vec<MetricWindow>`
// writes (elements laid out as `WINDOW`, checked at compile time), into
// memory allocated through the guest's `realloc` and bounds-checked; the
// empty list's pointer is aligned and addresses no bytes.
#[allow(unsafe_code)]
unsafe impl Lower for LoweredWindows {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        dst.write(flat_pairs([self.copy(cx)?])?);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let (ptr, len) = self.copy(cx)?;
        let mut pair = [0u8; 8];
        put_pair(&mut pair, 0, ptr, len)?;
        write(cx, offset, &pair)
    }
}

impl LoweredWindows {
    /// Writes the windows into the guest: the list's (pointer, length).
    /// The records are written straight into the memory the guest's
    /// `realloc` gave, not built in a host buffer and copied: a batch's
    /// windows are a few dozen kilobytes (256 items of a plugin that
    /// declares six are 72 KiB), zeroed, written and copied once each
    /// before. The records' padding is left as the guest's allocator left
    /// it, as the derived lowering leaves it.
    fn copy<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<(usize, usize)> {
        let align = <MetricWindow as ComponentType>::ALIGN32;
        let bytes = self.0.len() * WINDOW.size;
        if bytes == 0 {
            return copy_piece(cx, &[], align, 0);
        }
        let ptr = cx.realloc(0, 0, align, bytes)?;
        let records = region(cx.as_slice_mut(), ptr, bytes)?;
        for (record, window) in records.chunks_exact_mut(WINDOW.size).zip(&self.0) {
            window_record(record, window);
        }
        Ok((ptr, self.0.len()))
    }
}

/// Writes `window` as a `metric-window` record into `record`.
fn window_record(record: &mut [u8], window: &MetricWindow) {
    put(record, WINDOW.count, &window.count.to_le_bytes());
    for (at, value) in [
        (WINDOW.sum, window.sum),
        (WINDOW.min, window.min),
        (WINDOW.max, window.max),
        (WINDOW.first, window.first),
        (WINDOW.last, window.last),
    ] {
        put(record, at, &value.to_bits().to_le_bytes());
    }
}

/// The ABI of a `span` (contract 0.3 and later).
const SPAN_ABI: CanonicalAbiInfo = <packed::Span as ComponentType>::ABI;

layout! {
    /// Field offsets of `span`.
    SPAN: SpanLayout for packed::Span { start: U32, len: U32 }
}

layout! {
    /// Field offsets of `packed-context`.
    PACKED_CONTEXT: PackedContextLayout for packed::PackedContext {
        account_id: SPAN_ABI,
        account_name: SPAN_ABI,
        tier: BYTE,
        industry: BYTE,
        licensed_seats: U32,
        active_users: U32,
        arr: U64,
        contract_start: OPTION_S64,
        renewal_date: OPTION_S64,
        attributes: SPAN_ABI,
        event_id: SPAN_ABI,
        event_account_id: SPAN_ABI,
        event_kind: SPAN_ABI,
        occurred_at: U64,
        payload: SPAN_ABI,
        now: U64,
        scores: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of `packed-attribute`.
    PACKED_ATTRIBUTE: PackedAttributeLayout for packed::PackedAttribute {
        key: SPAN_ABI,
        value: SPAN_ABI,
    }
}

layout! {
    /// Field offsets of `packed-score`.
    PACKED_SCORE: PackedScoreLayout for packed::PackedScore {
        name: SPAN_ABI,
        value: U64,
        band: SPAN_ABI,
        rag: BYTE,
    }
}

layout! {
    /// Field offsets of `packed-contexts`.
    PACKED: PackedLayout for packed::PackedContexts {
        text: STRING,
        contexts: LIST,
        attributes: LIST,
        scores: LIST,
    }
}

/// A batch's contexts as contract 0.3's `packed-contexts`: every string in
/// one text, every attribute and score in one list each, so the whole
/// batch takes four allocations in the guest (none for an empty piece)
/// instead of a dozen per context.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Packed<'a> {
    /// Contexts packed as they are lowered, for this call alone.
    Contexts(&'a [Context]),
    /// The contexts `start..end` of a batch packed once for every plugin
    /// called on it: the text and the attribute and score lists go whole
    /// (the contexts' spans point into them), the context records sliced.
    Ready {
        /// The whole batch, packed.
        pieces: &'a PackedPieces,
        /// The first context sent.
        start: usize,
        /// One past the last context sent.
        end: usize,
    },
}

/// Makes `$wrapper` the component type the record `$ty` is, a record of
/// strings and lists only, whose flat form is a (pointer, length) pair per
/// field: `$flat` values (checked against the derived type's size).
macro_rules! record_of_pieces {
    ($wrapper:ty => $ty:ty, $flat:literal) => {
        // SAFETY: `$wrapper` is the component type `$ty` is: its ABI and
        // type check are the derived type's, and its flat form is the
        // flattening of the record's fields, a (pointer, length) pair
        // each (checked against the derived type's size below).
        #[allow(unsafe_code)]
        unsafe impl ComponentType for $wrapper {
            type Lower = [ValRaw; $flat];

            const ABI: CanonicalAbiInfo = <$ty as ComponentType>::ABI;

            fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
                <$ty as ComponentType>::typecheck(ty, types)
            }
        }

        const _: () = assert!(
            std::mem::size_of::<<$ty as ComponentType>::Lower>()
                == std::mem::size_of::<[ValRaw; $flat]>()
        );
    };
}

record_of_pieces!(Packed<'_> => packed::PackedContexts, 8);

/// A record of pieces' flat form: each piece's (pointer, length), as
/// 64-bit integers, as wasmtime's own lowering of a string or list stores
/// them.
fn flat_pairs<const PIECES: usize, const FLAT: usize>(
    pieces: [(usize, usize); PIECES],
) -> wasmtime::Result<[ValRaw; FLAT]> {
    const { assert!(FLAT == 2 * PIECES) };
    let mut flat = [ValRaw::i64(0); FLAT];
    for (pair, (ptr, len)) in flat.chunks_exact_mut(2).zip(pieces) {
        pair[0] = ValRaw::i64(i64::try_from(ptr)?);
        pair[1] = ValRaw::i64(i64::try_from(len)?);
    }
    Ok(flat)
}

// SAFETY: every piece is allocated through the guest's `realloc` (whose
// answer wasmtime bounds-checks) or, empty, points at its alignment with
// no bytes; every copy is bounds-checked; the records follow the layouts
// checked against wasmtime's at compile time.
#[allow(unsafe_code)]
unsafe impl Lower for Packed<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        let pieces = self.pieces(cx)?;
        dst.write(flat_pairs(pieces)?);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let [text, contexts, attributes, scores] = self.pieces(cx)?;
        let mut record = [0u8; PACKED.size];
        put_pair(&mut record, PACKED.text, text.0, text.1)?;
        put_pair(&mut record, PACKED.contexts, contexts.0, contexts.1)?;
        put_pair(&mut record, PACKED.attributes, attributes.0, attributes.1)?;
        put_pair(&mut record, PACKED.scores, scores.0, scores.1)?;
        write(cx, offset, &record)
    }
}

/// The four pieces of a packed batch, built in host memory: built once
/// per stage of the pipeline and copied into each plugin called on it.
#[derive(Debug)]
pub(crate) struct PackedPieces {
    text: Vec<u8>,
    contexts: Vec<u8>,
    attributes: Vec<u8>,
    scores: Vec<u8>,
}

/// A `span` record.
fn span(start: usize, len: usize) -> wasmtime::Result<[u8; 8]> {
    let mut record = [0u8; 8];
    put(
        &mut record,
        SPAN.start,
        &u32::try_from(start)?.to_le_bytes(),
    );
    put(&mut record, SPAN.len, &u32::try_from(len)?.to_le_bytes());
    Ok(record)
}

impl Packed<'_> {
    /// Packs the contexts (unless they are packed already) and copies the
    /// pieces into the guest: each piece's (pointer, length), in the
    /// record's field order.
    fn pieces<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<[(usize, usize); 4]> {
        if !matches!(
            cx.options().string_encoding,
            wasmtime_environ::component::StringEncoding::Utf8
        ) {
            wasmtime::bail!(
                "contract 0.3 contexts are packed as UTF-8; the component asks for another string encoding"
            );
        }
        match *self {
            Packed::Contexts(contexts) => {
                let pieces = PackedPieces::new(contexts)?;
                pieces.copy_into(cx, 0, contexts.len())
            }
            Packed::Ready { pieces, start, end } => pieces.copy_into(cx, start, end),
        }
    }
}

impl PackedPieces {
    /// Packs `contexts`. Fails only when the text or a list is too long
    /// for a span (4 GiB) or for wasmtime to copy into a guest (2 GiB).
    pub(crate) fn new(contexts: &[Context]) -> wasmtime::Result<Self> {
        // Sized first, so that packing allocates each piece once.
        let (mut text, mut attributes, mut scores) = (0, 0, 0);
        for ctx in contexts {
            let (account, event) = (&ctx.account, &ctx.event);
            text += account.id.len()
                + account.name.len()
                + event.id.len()
                + event.account_id.len()
                + event.kind.len()
                + event.payload.len();
            for attribute in &account.attributes {
                text += attribute.key.len() + attribute.value.len();
            }
            for score in &ctx.scores {
                text += score.name.len() + score.band.len();
            }
            attributes += account.attributes.len();
            scores += ctx.scores.len();
        }
        let mut pieces = PackedPieces {
            text: Vec::with_capacity(text),
            contexts: Vec::with_capacity(contexts.len() * PACKED_CONTEXT.size),
            attributes: Vec::with_capacity(attributes * PACKED_ATTRIBUTE.size),
            scores: Vec::with_capacity(scores * PACKED_SCORE.size),
        };
        for ctx in contexts {
            let mut record = [0u8; PACKED_CONTEXT.size];
            let account = &ctx.account;
            put(
                &mut record,
                PACKED_CONTEXT.account_id,
                &pieces.text(&account.id)?,
            );
            put(
                &mut record,
                PACKED_CONTEXT.account_name,
                &pieces.text(&account.name)?,
            );
            put(&mut record, PACKED_CONTEXT.tier, &[account.tier as u8]);
            put(
                &mut record,
                PACKED_CONTEXT.industry,
                &[account.industry as u8],
            );
            put(
                &mut record,
                PACKED_CONTEXT.licensed_seats,
                &account.licensed_seats.to_le_bytes(),
            );
            put(
                &mut record,
                PACKED_CONTEXT.active_users,
                &account.active_users.to_le_bytes(),
            );
            put(&mut record, PACKED_CONTEXT.arr, &account.arr.to_le_bytes());
            put_option(
                &mut record,
                PACKED_CONTEXT.contract_start,
                account.contract_start,
            );
            put_option(
                &mut record,
                PACKED_CONTEXT.renewal_date,
                account.renewal_date,
            );
            put(
                &mut record,
                PACKED_CONTEXT.attributes,
                &span(
                    pieces.attributes.len() / PACKED_ATTRIBUTE.size,
                    account.attributes.len(),
                )?,
            );
            for attribute in &account.attributes {
                let mut element = [0u8; PACKED_ATTRIBUTE.size];
                put(
                    &mut element,
                    PACKED_ATTRIBUTE.key,
                    &pieces.text(&attribute.key)?,
                );
                put(
                    &mut element,
                    PACKED_ATTRIBUTE.value,
                    &pieces.text(&attribute.value)?,
                );
                pieces.attributes.extend_from_slice(&element);
            }
            let event = &ctx.event;
            put(
                &mut record,
                PACKED_CONTEXT.event_id,
                &pieces.text(&event.id)?,
            );
            put(
                &mut record,
                PACKED_CONTEXT.event_account_id,
                &pieces.text(&event.account_id)?,
            );
            put(
                &mut record,
                PACKED_CONTEXT.event_kind,
                &pieces.text(&event.kind)?,
            );
            put(
                &mut record,
                PACKED_CONTEXT.occurred_at,
                &event.occurred_at.to_le_bytes(),
            );
            put(
                &mut record,
                PACKED_CONTEXT.payload,
                &pieces.text(&event.payload)?,
            );
            put(&mut record, PACKED_CONTEXT.now, &ctx.now.to_le_bytes());
            put(
                &mut record,
                PACKED_CONTEXT.scores,
                &pieces.scores(&ctx.scores)?,
            );
            pieces.contexts.extend_from_slice(&record);
        }
        pieces.check_text_length()?;
        Ok(pieces)
    }

    /// The packing of `contexts`, which are the contexts this packing was
    /// made of but for their scores: the text, records and attributes
    /// copied as they are, each context's scores packed anew (their
    /// strings after the text; those of the scores before, if any, stay
    /// in it unread). Between the pipeline's scorers and the stages after
    /// them only the scores change, and copying the rest is cheaper than
    /// packing it again.
    pub(crate) fn with_scores(&self, contexts: &[Context]) -> wasmtime::Result<Self> {
        if contexts.len() * PACKED_CONTEXT.size != self.contexts.len() {
            wasmtime::bail!(
                "{} contexts given for a packing of {}",
                contexts.len(),
                self.contexts.len() / PACKED_CONTEXT.size
            );
        }
        let (mut text, mut scores) = (self.text.len(), 0);
        for ctx in contexts {
            for score in &ctx.scores {
                text += score.name.len() + score.band.len();
            }
            scores += ctx.scores.len();
        }
        let mut pieces = PackedPieces {
            text: Vec::with_capacity(text),
            contexts: self.contexts.clone(),
            attributes: self.attributes.clone(),
            scores: Vec::with_capacity(scores * PACKED_SCORE.size),
        };
        pieces.text.extend_from_slice(&self.text);
        for (at, ctx) in contexts.iter().enumerate() {
            let span = pieces.scores(&ctx.scores)?;
            put(
                &mut pieces.contexts,
                at * PACKED_CONTEXT.size + PACKED_CONTEXT.scores,
                &span,
            );
        }
        pieces.check_text_length()?;
        Ok(pieces)
    }

    /// Packs `scores` after the scores packed so far; their span.
    fn scores(&mut self, scores: &[ScoreSummary]) -> wasmtime::Result<[u8; 8]> {
        let first = self.scores.len() / PACKED_SCORE.size;
        for score in scores {
            let mut element = [0u8; PACKED_SCORE.size];
            put(&mut element, PACKED_SCORE.name, &self.text(&score.name)?);
            put(
                &mut element,
                PACKED_SCORE.value,
                &score.value.to_bits().to_le_bytes(),
            );
            put(&mut element, PACKED_SCORE.band, &self.text(&score.band)?);
            put(&mut element, PACKED_SCORE.rag, &[score.rag as u8]);
            self.scores.extend_from_slice(&element);
        }
        span(first, scores.len())
    }

    /// Fails if the text is too long for wasmtime to copy into a guest.
    fn check_text_length(&self) -> wasmtime::Result<()> {
        if self.text.len() > MAX_STRING_BYTES {
            wasmtime::bail!(
                "string length of {} too large to copy into wasm",
                self.text.len()
            );
        }
        Ok(())
    }

    /// Appends `value` to the text and returns its span.
    fn text(&mut self, value: &str) -> wasmtime::Result<[u8; 8]> {
        let start = self.text.len();
        self.text.extend_from_slice(value.as_bytes());
        span(start, value.len())
    }

    /// Copies the pieces into the guest for the contexts `start..end`:
    /// the text, attributes and scores whole, the context records of that
    /// range. Returns each piece's (pointer, length), in the record's
    /// field order.
    fn copy_into<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        start: usize,
        end: usize,
    ) -> wasmtime::Result<[(usize, usize); 4]> {
        let records = self
            .contexts
            .get(start * PACKED_CONTEXT.size..end * PACKED_CONTEXT.size)
            .ok_or_else(|| {
                wasmtime::format_err!(
                    "contexts {start}..{end} are outside a packed batch of {}",
                    self.contexts.len() / PACKED_CONTEXT.size
                )
            })?;
        Ok([
            copy_piece(cx, &self.text, 1, self.text.len())?,
            copy_piece(
                cx,
                records,
                <packed::PackedContext as ComponentType>::ALIGN32,
                end - start,
            )?,
            copy_piece(
                cx,
                &self.attributes,
                <packed::PackedAttribute as ComponentType>::ALIGN32,
                self.attributes.len() / PACKED_ATTRIBUTE.size,
            )?,
            copy_piece(
                cx,
                &self.scores,
                <packed::PackedScore as ComponentType>::ALIGN32,
                self.scores.len() / PACKED_SCORE.size,
            )?,
        ])
    }
}

/// Copies one piece into the guest, allocated through its `realloc`; an
/// empty piece points at its alignment, with no call (what a `wit-bindgen`
/// guest's `realloc` answers for zero bytes). Returns (pointer, length in
/// elements).
fn copy_piece<T>(
    cx: &mut LowerContext<'_, T>,
    bytes: &[u8],
    align: u32,
    len: usize,
) -> wasmtime::Result<(usize, usize)> {
    if bytes.is_empty() {
        return Ok((usize::try_from(align)?, len));
    }
    let ptr = cx.realloc(0, 0, align, bytes.len())?;
    write(cx, ptr, bytes)?;
    Ok((ptr, len))
}

// `span` writes contract 0.3's `span`; 0.4's is the same record.
const _: () = assert!(
    <v4::Span as ComponentType>::SIZE32 == <packed::Span as ComponentType>::SIZE32
        && <v4::Span as ComponentType>::ALIGN32 == <packed::Span as ComponentType>::ALIGN32
);

layout! {
    /// Field offsets of `packed-check-item`.
    CHECK_ITEM: CheckItemLayout for v4::PackedCheckItem {
        context: U32,
        signal: <v4::PackedSignal as ComponentType>::ABI,
    }
}

layout! {
    /// Field offsets of `packed-check-items`.
    CHECK_ITEMS: CheckItemsLayout for v4::PackedCheckItems { text: STRING, items: LIST }
}

/// The signals a condition checks (contract 0.4), packed into the records
/// wasmtime's derived lowering of `packed-check-items` writes, built in
/// host memory and copied into the guest with one copy for the text and
/// one for the list. The derived lowering writes each item field by field
/// and each span as a record of its own, looking the guest's memory up
/// for every write: about 1,500 instructions an event in the bench
/// (callgrind, BENCHMARKS.md).
#[derive(Debug)]
pub(crate) struct LoweredCheckItems {
    /// Every string of every signal, one after the other.
    text: Vec<u8>,
    /// The `packed-check-item` records, laid out as `CHECK_ITEM`.
    items: Vec<u8>,
    /// How many records `items` holds.
    count: usize,
}

/// A `severity`'s discriminant, in the contract's order.
fn severity_discriminant(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

impl LoweredCheckItems {
    /// Packs `items`. Fails only when the text is too long for a span
    /// (4 GiB).
    pub(crate) fn new(items: &[CheckItem]) -> wasmtime::Result<Self> {
        let bytes = items
            .iter()
            .map(|item| {
                let signal = &item.signal;
                signal.name.len() + signal.reason.len() + signal.dedup_key.len()
            })
            .sum();
        let mut text = Vec::with_capacity(bytes);
        let mut records = vec![0u8; items.len() * CHECK_ITEM.size];
        for (record, item) in records.chunks_exact_mut(CHECK_ITEM.size).zip(items) {
            let signal = &item.signal;
            let at = CHECK_ITEM.signal;
            put(record, CHECK_ITEM.context, &item.context.to_le_bytes());
            for (field, value) in [
                (SIGNAL.name, signal.name.as_bytes()),
                (SIGNAL.reason, signal.reason.as_bytes()),
                (SIGNAL.dedup_key, signal.dedup_key.as_bytes()),
            ] {
                put(record, at + field, &span(text.len(), value.len())?);
                text.extend_from_slice(value);
            }
            put(
                record,
                at + SIGNAL.severity,
                &[severity_discriminant(signal.severity)],
            );
            put(
                record,
                at + SIGNAL.cooldown_secs,
                &signal.cooldown_secs.to_le_bytes(),
            );
        }
        if text.len() > MAX_STRING_BYTES {
            wasmtime::bail!("the check items' text is longer than a guest string may be");
        }
        Ok(Self {
            text,
            items: records,
            count: items.len(),
        })
    }

    /// Copies the text and the list into the guest: each one's (pointer,
    /// length), the text first, as the derived lowering allocates them.
    fn copy<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<[(usize, usize); 2]> {
        if !matches!(
            cx.options().string_encoding,
            wasmtime_environ::component::StringEncoding::Utf8
        ) {
            wasmtime::bail!(
                "contract 0.4 check items are packed as UTF-8; the component asks for another string encoding"
            );
        }
        Ok([
            copy_piece(cx, &self.text, 1, self.text.len())?,
            copy_piece(
                cx,
                &self.items,
                <v4::PackedCheckItem as ComponentType>::ALIGN32,
                self.count,
            )?,
        ])
    }
}

record_of_pieces!(LoweredCheckItems => v4::PackedCheckItems, 4);

// SAFETY: both pieces are allocated through the guest's `realloc` (whose
// answer wasmtime bounds-checks) or, empty, point at their alignment with
// no bytes; every copy is bounds-checked; the records follow the layouts
// checked against wasmtime's at compile time.
#[allow(unsafe_code)]
unsafe impl Lower for LoweredCheckItems {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        dst.write(flat_pairs(self.copy(cx)?)?);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let [text, items] = self.copy(cx)?;
        let mut record = [0u8; CHECK_ITEMS.size];
        put_pair(&mut record, CHECK_ITEMS.text, text.0, text.1)?;
        put_pair(&mut record, CHECK_ITEMS.items, items.0, items.1)?;
        write(cx, offset, &record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::types::{Industry, Rag, Tier};
    use crate::runtime::results::Signal;

    /// The little-endian `u32` at `at` of `bytes`.
    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn check_items_are_packed_into_one_text_and_records_at_the_contracts_offsets() {
        let signal = |name: &str, severity| Signal {
            name: name.into(),
            severity,
            reason: "because".into(),
            dedup_key: format!("{name}:acct").into(),
            cooldown_secs: 60,
        };
        let items = [
            CheckItem {
                context: 0,
                signal: signal("usage.drop", Severity::Medium),
            },
            CheckItem {
                context: 3,
                signal: signal("nps.detractor", Severity::Critical),
            },
        ];
        let lowered = LoweredCheckItems::new(&items).unwrap();
        assert_eq!(lowered.count, 2);
        assert_eq!(lowered.items.len(), 2 * CHECK_ITEM.size);
        let text = std::str::from_utf8(&lowered.text).unwrap();
        let record = |k: usize| &lowered.items[k * CHECK_ITEM.size..(k + 1) * CHECK_ITEM.size];
        let at = |k: usize, field: usize| {
            let start = u32_at(record(k), CHECK_ITEM.signal + field) as usize;
            let len = u32_at(record(k), CHECK_ITEM.signal + field + 4) as usize;
            &text[start..start + len]
        };
        assert_eq!(u32_at(record(1), CHECK_ITEM.context), 3);
        assert_eq!(at(1, SIGNAL.name), "nps.detractor");
        assert_eq!(at(1, SIGNAL.dedup_key), "nps.detractor:acct");
        assert_eq!(at(0, SIGNAL.reason), "because");
        assert_eq!(at(0, SIGNAL.name), "usage.drop");
        // `medium` and `critical` are the contract's third and fifth cases.
        assert_eq!(record(0)[CHECK_ITEM.signal + SIGNAL.severity], 2);
        assert_eq!(record(1)[CHECK_ITEM.signal + SIGNAL.severity], 4);
        assert_eq!(
            u32_at(record(1), CHECK_ITEM.signal + SIGNAL.cooldown_secs),
            60
        );
        assert_eq!(
            text.len(),
            "usage.drop".len() * 2
                + ":acct".len()
                + "because".len() * 2
                + "nps.detractor".len() * 2
                + ":acct".len()
        );
    }

    /// A packed score read back: name, value bits, band, rag.
    type ScoreReadBack = (String, u64, String, u8);

    /// Context `k` of `pieces` read back: its strings (the account's id
    /// and name, its attributes' keys and values, the event's id, account,
    /// kind and payload) and its scores.
    fn read_back(pieces: &PackedPieces, k: usize) -> (Vec<String>, Vec<ScoreReadBack>) {
        let text = std::str::from_utf8(&pieces.text).unwrap();
        let record = &pieces.contexts[k * PACKED_CONTEXT.size..(k + 1) * PACKED_CONTEXT.size];
        let span_at = |bytes: &[u8], at: usize| {
            let start = u32_at(bytes, at) as usize;
            start..start + u32_at(bytes, at + 4) as usize
        };
        let string = |bytes: &[u8], at: usize| text[span_at(bytes, at)].to_string();
        let mut strings = vec![
            string(record, PACKED_CONTEXT.account_id),
            string(record, PACKED_CONTEXT.account_name),
        ];
        for a in span_at(record, PACKED_CONTEXT.attributes) {
            let element = &pieces.attributes[a * PACKED_ATTRIBUTE.size..][..PACKED_ATTRIBUTE.size];
            strings.push(string(element, PACKED_ATTRIBUTE.key));
            strings.push(string(element, PACKED_ATTRIBUTE.value));
        }
        for field in [
            PACKED_CONTEXT.event_id,
            PACKED_CONTEXT.event_account_id,
            PACKED_CONTEXT.event_kind,
            PACKED_CONTEXT.payload,
        ] {
            strings.push(string(record, field));
        }
        let scores = span_at(record, PACKED_CONTEXT.scores)
            .map(|s| {
                let element = &pieces.scores[s * PACKED_SCORE.size..][..PACKED_SCORE.size];
                let value = &element[PACKED_SCORE.value..PACKED_SCORE.value + 8];
                (
                    string(element, PACKED_SCORE.name),
                    u64::from_le_bytes(value.try_into().unwrap()),
                    string(element, PACKED_SCORE.band),
                    element[PACKED_SCORE.rag],
                )
            })
            .collect();
        (strings, scores)
    }

    fn context(id: &str, scores: &[(&str, f64, &str)]) -> Context {
        Context {
            account: Account {
                id: id.into(),
                name: format!("{id} Inc."),
                tier: Tier::Enterprise,
                industry: Industry::Healthcare,
                licensed_seats: 40,
                active_users: 12,
                arr: 90_000,
                contract_start: Some(1),
                renewal_date: None,
                attributes: vec![Attribute {
                    key: "region".into(),
                    value: format!("{id}-emea"),
                }],
            },
            event: Event {
                id: format!("{id}-evt"),
                account_id: id.into(),
                kind: "usage.daily".into(),
                occurred_at: 7,
                payload: format!("{{\"logins\": {}}}", id.len()),
            },
            now: 9,
            scores: scores
                .iter()
                .map(|(name, value, band)| ScoreSummary {
                    name: (*name).into(),
                    value: *value,
                    band: (*band).into(),
                    rag: Rag::Yellow,
                })
                .collect(),
        }
    }

    #[test]
    fn a_packing_rescored_reads_back_as_a_packing_of_the_rescored_contexts() {
        let unscored = [
            context("acct-1", &[]),
            context("acct-22", &[]),
            context("a", &[]),
        ];
        let rescored = [
            context("acct-1", &[("health", 41.5, "at-risk")]),
            context("acct-22", &[]),
            context("a", &[("health", 80.0, "healthy"), ("lead", 12.25, "cold")]),
        ];
        let before = PackedPieces::new(&unscored).unwrap();
        let derived = before.with_scores(&rescored).unwrap();
        let fresh = PackedPieces::new(&rescored).unwrap();
        for k in 0..rescored.len() {
            assert_eq!(read_back(&derived, k), read_back(&fresh, k), "context {k}");
        }
        // The same records but for the scores' spans, the same attributes.
        let without_scores = |pieces: &PackedPieces| {
            let mut records = pieces.contexts.clone();
            for record in records.chunks_exact_mut(PACKED_CONTEXT.size) {
                record[PACKED_CONTEXT.scores..PACKED_CONTEXT.scores + 8].fill(0);
            }
            records
        };
        assert_eq!(without_scores(&derived), without_scores(&before));
        assert_eq!(derived.attributes, before.attributes);
        assert_eq!(derived.scores.len(), 3 * PACKED_SCORE.size);
        assert_eq!(read_back(&derived, 2).1[1].0, "lead");
        // A packing is only rescored with as many contexts as it holds.
        assert!(before.with_scores(&rescored[..2]).is_err());
    }

    #[test]
    fn the_severity_discriminants_follow_the_contracts_enum() {
        // The derived type's cases, in declaration order, are the wire's.
        for (severity, packed) in [
            (Severity::Info, v4::Severity::Info),
            (Severity::Low, v4::Severity::Low),
            (Severity::Medium, v4::Severity::Medium),
            (Severity::High, v4::Severity::High),
            (Severity::Critical, v4::Severity::Critical),
        ] {
            assert_eq!(
                u32::from(severity_discriminant(severity)),
                packed as u32,
                "{severity:?}"
            );
        }
        assert_eq!(<v4::Severity as ComponentType>::SIZE32, 1);
    }
}
