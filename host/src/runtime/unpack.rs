//! Contract 0.4's, 0.5's and 0.6's packed results, unpacked into the
//! host's types (a condition's signals are packed for it by
//! `lower::LoweredCheckItems`). 0.5 differs from 0.4 only in its verdicts:
//! their tags are bits of the plugin's declared tags ([`tagged_verdicts`]),
//! not spans. 0.6 differs from 0.5 only in its score cards: their score,
//! band and factors are positions among the plugin's declared scores
//! ([`declared_cards`]), not spans. 0.7's rulings ([`rulings`]) hold a
//! context's cards (0.6's), signals and verdicts (0.5's) together.
//!
//! A 0.4 plugin returns a batch's score cards, signals or verdicts as one
//! text and a list of records whose strings are spans of it: the host lifts
//! one string per call instead of one per field of every result. A span
//! that does not fit its text or list is the plugin's fault, reported as
//! [`MalformedResults`]: the call's results are refused, and the host
//! narrows the batch down to the item that caused it.
//!
//! Spans may be shared (a band written once for every card, say), but
//! what a call's results unpack to is bounded: at most the per-item output
//! limit for every result, or what the plugin returned if that is more
//! (strings by their bytes, list elements at the sizes the output check
//! counts). Without a bound, a plugin could point a thousand results at
//! one large string and make the host allocate a thousand copies of it —
//! more than the plugin's memory cap ever held.

use std::cell::Cell;

use super::bindings::types::{PluginError, Rag, Severity};
use super::bindings::v0_4::vigil::plugin::types as v4;
use super::bindings::v0_5::vigil::plugin::types as v5;
use super::bindings::v0_6::vigil::plugin::types as v6;
use super::bindings::v0_7::vigil::plugin::types as v7;
use super::lift::Rulings;
use super::output::{DeclaredCard, DeclaredRuling, DeclaredVerdict};
use super::results::{DeclaredScore, Factor, Ruling, ScoreCard, Signal, Text, Verdict};

/// Packed results that point outside their text or lists, at a string cut
/// inside a character, or at more than their budget.
#[derive(Debug, thiserror::Error)]
#[error("the plugin's packed results are malformed: {0}")]
pub(crate) struct MalformedResults(String);

/// The output limit a call's results are unpacked under: `per_item` bytes
/// for each of the `items` the call was given. Results past that count
/// get no budget of their own (the answer is refused for its count
/// anyway, once unpacked), so a plugin cannot make the host copy a string
/// for each of a flood of results it was never asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    /// The output limit for one item, in bytes.
    pub(crate) per_item: usize,
    /// How many items the call was given.
    pub(crate) items: usize,
}

impl Limit {
    /// How many of `results` results count toward the budget: at most as
    /// many as the call was given items.
    fn counted(self, results: usize) -> usize {
        results.min(self.items)
    }
}

/// What a factor, a signal and a policy tag count for besides their
/// strings: the sizes `PluginOutput::size` gives them.
const FACTOR_BYTES: usize = 32;
const SIGNAL_BYTES: usize = 8;
const TAG_BYTES: usize = 4;
/// What a card and a verdict count for besides their strings (the same).
const CARD_BYTES: usize = 16;
const VERDICT_BYTES: usize = 1;

/// One call's packed results being unpacked: its text and its list of
/// records (factors, signals or tags), read span by span under one budget
/// of bytes (see the module docs); each element taken costs `charge`.
struct Reader<'a, T> {
    text: &'a str,
    list: &'a [T],
    what: &'static str,
    charge: usize,
    left: Cell<usize>,
    total: usize,
    /// The output limit for every result.
    floor: usize,
    /// What the plugin returned, in the budget's bytes.
    returned: usize,
}

impl<'a, T> Reader<'a, T> {
    /// The reader of `results` results returned as `text` and `list`, under
    /// `limit`.
    fn new(
        text: &'a str,
        list: &'a [T],
        what: &'static str,
        charge: usize,
        results: usize,
        limit: Limit,
    ) -> Self {
        let returned = text.len().saturating_add(list.len().saturating_mul(charge));
        let floor = limit.counted(results).saturating_mul(limit.per_item);
        let total = floor.max(returned);
        Self {
            text,
            list,
            what,
            charge,
            left: Cell::new(total),
            total,
            floor,
            returned,
        }
    }

    /// The reader of results that also unpack to names the plugin
    /// declared (policy tags, scores, bands, factors), at most `declared`
    /// bytes of them if each of its results and records is taken once:
    /// what the plugin returned stands for that much more, so a result
    /// over the output limit is still reported as too large, not as
    /// malformed.
    fn declaring(self, declared: usize) -> Self {
        let returned = self.returned.saturating_add(declared);
        let total = self.floor.max(returned);
        Self {
            left: Cell::new(total),
            total,
            returned,
            ..self
        }
    }

    fn spend(&self, bytes: usize) -> Result<(), MalformedResults> {
        let left = self.left.get().checked_sub(bytes).ok_or_else(|| {
            MalformedResults(format!(
                "the spans unpack to more than {} bytes, the output limit for every result or what was returned",
                self.total
            ))
        })?;
        self.left.set(left);
        Ok(())
    }

    /// The string at `span` of the text: inline when it is short, as
    /// nearly all are.
    fn string(&self, span: v4::Span) -> Result<Text, MalformedResults> {
        let start = span.start as usize;
        let end = start.saturating_add(span.len as usize);
        let string = self.text.get(start..end).ok_or_else(|| {
            MalformedResults(format!(
                "text {start}..{end} is not a string of the {} bytes returned",
                self.text.len()
            ))
        })?;
        self.spend(string.len())?;
        Ok(Text::new(string))
    }

    /// The elements at `span` of the list.
    fn elements(&self, span: v4::Span) -> Result<&'a [T], MalformedResults> {
        self.elements_of(self.list, self.what, self.charge, span)
    }

    /// The elements at `span` of `list` (`what`, each costing `charge`),
    /// under this reader's budget: for results with several lists.
    fn elements_of<'l, U>(
        &self,
        list: &'l [U],
        what: &str,
        charge: usize,
        span: v4::Span,
    ) -> Result<&'l [U], MalformedResults> {
        let len = list.len();
        let start = span.start as usize;
        let end = start.saturating_add(span.len as usize);
        let elements = list.get(start..end).ok_or_else(|| {
            MalformedResults(format!(
                "{what} {start}..{end} are not among the {len} returned"
            ))
        })?;
        self.spend(elements.len().saturating_mul(charge))?;
        Ok(elements)
    }
}

/// Every result, its `ok` unpacked by `f` and its error converted.
fn each_result<P, R>(
    results: Vec<Result<P, v4::PluginError>>,
    mut f: impl FnMut(P) -> Result<R, MalformedResults>,
) -> wasmtime::Result<Vec<Result<R, PluginError>>> {
    let mut unpacked = Vec::with_capacity(results.len());
    for result in results {
        unpacked.push(match result {
            Ok(packed) => Ok(f(packed)?),
            Err(error) => Err(plugin_error(error)),
        });
    }
    Ok(unpacked)
}

/// `f` of every element, in a list sized once (collecting through
/// `Result` would start small and grow: two or three allocations for a
/// verdict's nine tags instead of one).
fn each<T, U>(
    elements: &[T],
    mut f: impl FnMut(&T) -> Result<U, MalformedResults>,
) -> Result<Vec<U>, MalformedResults> {
    let mut unpacked = Vec::with_capacity(elements.len());
    for element in elements {
        unpacked.push(f(element)?);
    }
    Ok(unpacked)
}

/// `$name` converts a contract version's `plugin-error` (the same variants
/// in every version) into the host's.
macro_rules! plugin_error_of {
    ($name:ident, $version:ident) => {
        fn $name(error: $version::PluginError) -> PluginError {
            match error {
                $version::PluginError::InvalidInput(m) => PluginError::InvalidInput(m),
                $version::PluginError::InvalidConfig(m) => PluginError::InvalidConfig(m),
                $version::PluginError::InsufficientData(m) => PluginError::InsufficientData(m),
                $version::PluginError::Internal(m) => PluginError::Internal(m),
            }
        }
    };
}

plugin_error_of!(plugin_error, v4);
plugin_error_of!(v5_plugin_error, v5);
plugin_error_of!(v6_plugin_error, v6);

fn rag(rag: v4::Rag) -> Rag {
    match rag {
        v4::Rag::Red => Rag::Red,
        v4::Rag::Yellow => Rag::Yellow,
        v4::Rag::Green => Rag::Green,
    }
}

fn severity(severity: v4::Severity) -> Severity {
    match severity {
        v4::Severity::Info => Severity::Info,
        v4::Severity::Low => Severity::Low,
        v4::Severity::Medium => Severity::Medium,
        v4::Severity::High => Severity::High,
        v4::Severity::Critical => Severity::Critical,
    }
}

/// A batch's score cards, one result per context; `limit` is the output
/// limit per item, in bytes.
pub(crate) fn cards(
    packed: v4::PackedScoreCards,
    limit: Limit,
) -> wasmtime::Result<Vec<Result<ScoreCard, PluginError>>> {
    let v4::PackedScoreCards {
        text,
        results,
        factors,
    } = packed;
    let read = Reader::new(
        &text,
        &factors,
        "factors",
        FACTOR_BYTES,
        results.len(),
        limit,
    );
    each_result(results, |card| {
        let factors = each(read.elements(card.factors)?, |factor| {
            Ok(Factor {
                name: read.string(factor.name)?,
                weight: factor.weight,
                raw: factor.raw,
                value: factor.value,
                contribution: factor.contribution,
                note: read.string(factor.note)?,
            })
        })?;
        Ok(ScoreCard {
            name: read.string(card.name)?,
            value: card.value,
            band: read.string(card.band)?,
            rag: rag(card.rag),
            factors,
        })
    })
}

/// A batch's signals, one result per context; `limit` is the output limit
/// per item, in bytes.
pub(crate) fn signals(
    packed: v4::PackedSignals,
    limit: Limit,
) -> wasmtime::Result<Vec<Result<Vec<Signal>, PluginError>>> {
    let v4::PackedSignals {
        text,
        results,
        signals,
    } = packed;
    let read = Reader::new(
        &text,
        &signals,
        "signals",
        SIGNAL_BYTES,
        results.len(),
        limit,
    );
    each_result(results, |span| {
        each(read.elements(span)?, |signal| {
            Ok(Signal {
                name: read.string(signal.name)?,
                severity: severity(signal.severity),
                reason: read.string(signal.reason)?,
                dedup_key: read.string(signal.dedup_key)?,
                cooldown_secs: signal.cooldown_secs,
            })
        })
    })
}

/// A batch's verdicts, one result per item; `limit` is the output limit
/// per item, in bytes.
pub(crate) fn verdicts(
    packed: v4::PackedVerdicts,
    limit: Limit,
) -> wasmtime::Result<Vec<Result<Verdict, PluginError>>> {
    let v4::PackedVerdicts {
        text,
        results,
        tags,
    } = packed;
    let read = Reader::new(&text, &tags, "policy tags", TAG_BYTES, results.len(), limit);
    each_result(results, |verdict| {
        Ok(Verdict {
            applies: verdict.applies,
            reason: read.string(verdict.reason)?,
            policy_tags: each(read.elements(verdict.policy_tags)?, |tag| read.string(*tag))?,
        })
    })
}

/// A batch's verdicts from a contract 0.5 plugin, one result per item:
/// each verdict's tags are the set bits' tags of `declared`, the plugin's
/// declared policy tags (checked at load), in the declared order; `limit`
/// is the output limit per item, in bytes. A bit with no declared tag is
/// malformed.
pub(crate) fn tagged_verdicts(
    packed: v5::PackedVerdicts,
    declared: &[Text],
    limit: Limit,
) -> wasmtime::Result<Vec<Result<DeclaredVerdict, PluginError>>> {
    let v5::PackedVerdicts { text, results } = packed;
    // A verdict carries each declared tag at most once.
    let all_tags: usize = declared
        .iter()
        .map(|tag| tag.len().saturating_add(TAG_BYTES))
        .sum();
    let read = Reader::<()>::new(&text, &[], "policy tags", TAG_BYTES, results.len(), limit)
        .declaring(limit.counted(results.len()).saturating_mul(all_tags));
    let mut unpacked = Vec::with_capacity(results.len());
    for result in results {
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(error) => {
                unpacked.push(Err(v5_plugin_error(error)));
                continue;
            }
        };
        let policy_tags = tags_by_bit(&read, verdict.policy_tags, declared)?;
        let reason = v4::Span {
            start: verdict.reason.start,
            len: verdict.reason.len,
        };
        unpacked.push(Ok(DeclaredVerdict(Verdict {
            applies: verdict.applies,
            reason: read.string(reason)?,
            policy_tags,
        })));
    }
    Ok(unpacked)
}

/// A batch's score cards from a contract 0.6 plugin, one result per item:
/// each card's score, band and factors are the names at their positions
/// among `declared`, the plugin's declared scores (checked at load), and
/// each factor's note a span of the text; `limit` is the output limit per
/// item, in bytes. A position with nothing declared there is malformed.
pub(crate) fn declared_cards(
    packed: v6::PackedScoreCards,
    declared: &[DeclaredScore],
    limit: Limit,
) -> wasmtime::Result<Vec<Result<DeclaredCard, PluginError>>> {
    let v6::PackedScoreCards {
        text,
        results,
        factors,
    } = packed;
    // Each card names a score and a band, each of its factors a factor's
    // name: at most the longest of each.
    let longest = |names: &mut dyn Iterator<Item = &Text>| names.map(|name| name.len()).max();
    let card_names = longest(&mut declared.iter().map(|score| &score.name)).unwrap_or(0)
        + longest(&mut declared.iter().flat_map(|score| &score.bands)).unwrap_or(0);
    let factor_name = longest(&mut declared.iter().flat_map(|score| &score.factors)).unwrap_or(0);
    let read = Reader::new(
        &text,
        &factors,
        "factors",
        FACTOR_BYTES,
        results.len(),
        limit,
    )
    .declaring(
        limit
            .counted(results.len())
            .saturating_mul(card_names)
            .saturating_add(factors.len().saturating_mul(factor_name)),
    );
    let mut unpacked = Vec::with_capacity(results.len());
    for result in results {
        let card = match result {
            Ok(card) => card,
            Err(error) => {
                unpacked.push(Err(v6_plugin_error(error)));
                continue;
            }
        };
        let card = declared_card(&read, &card, |span| read.elements(span), declared)?;
        unpacked.push(Ok(DeclaredCard(card)));
    }
    Ok(unpacked)
}

/// A 0.6 card, its score, band and factors named by position among
/// `declared`, each factor's note read by `read` and its factors found by
/// `factors_at`. A position with nothing declared there, or a factor
/// listed twice, is malformed.
fn declared_card<'f, T>(
    read: &Reader<'_, T>,
    card: &v6::PackedScoreCard,
    factors_at: impl FnOnce(v4::Span) -> Result<&'f [v6::PackedFactor], MalformedResults>,
    declared: &[DeclaredScore],
) -> Result<ScoreCard, MalformedResults> {
    let score = declared_at(declared, card.score, "score", "scores")?;
    let band = declared_at(&score.bands, card.band, "band", "bands")?;
    read.spend(score.name.len().saturating_add(band.len()))?;
    // The factors a card has listed so far, by position (a score
    // declares at most 64): the contract lists each at most once.
    let mut listed = 0u64;
    let factors = each(factors_at(v4_span(card.factors))?, |factor| {
        let name = declared_at(&score.factors, factor.factor, "factor", "factors")?;
        let bit = 1u64.checked_shl(factor.factor).unwrap_or(0);
        if listed & bit != 0 {
            return Err(MalformedResults(format!(
                "a card lists the factor `{name}` twice"
            )));
        }
        listed |= bit;
        read.spend(name.len())?;
        Ok(Factor {
            name: name.clone(),
            weight: factor.weight,
            raw: factor.raw,
            value: factor.value,
            contribution: factor.contribution,
            note: read.string(v4_span(factor.note))?,
        })
    })?;
    Ok(ScoreCard {
        name: score.name.clone(),
        value: card.value,
        band: band.clone(),
        rag: match card.rag {
            v6::Rag::Red => Rag::Red,
            v6::Rag::Yellow => Rag::Yellow,
            v6::Rag::Green => Rag::Green,
        },
        factors,
    })
}

/// The policy tags of a verdict that names them by the bits `bits` of
/// `declared` (0.5 and later), in the declared order, each spent from
/// `read`'s budget. A bit with no declared tag is malformed.
fn tags_by_bit<T>(
    read: &Reader<'_, T>,
    mut bits: u64,
    declared: &[Text],
) -> Result<Vec<Text>, MalformedResults> {
    // The bits that name a declared tag: the low `declared.len()`.
    let known = match declared.len() {
        64.. => u64::MAX,
        len => (1u64 << len) - 1,
    };
    if bits & !known != 0 {
        return Err(MalformedResults(format!(
            "a verdict names policy tag {}, but the plugin declares {} tags",
            (bits & !known).trailing_zeros(),
            declared.len()
        )));
    }
    let mut policy_tags = Vec::with_capacity(bits.count_ones() as usize);
    while bits != 0 {
        let at = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if let Some(tag) = declared.get(at) {
            read.spend(tag.len().saturating_add(TAG_BYTES))?;
            policy_tags.push(tag.clone());
        }
    }
    Ok(policy_tags)
}

/// A batch's rulings from a contract 0.7 ruleset, one result per context:
/// each ruling's cards as [`declared_cards`] unpacks a card (each declared
/// score at most once in a ruling), its signals as [`signals`] unpacks
/// them and the verdict on each as [`tagged_verdicts`] unpacks one (the
/// same span of the verdicts as of the signals); `limit` is the output
/// limit per item, in bytes.
pub(crate) fn rulings(
    packed: Rulings,
    scores: &[DeclaredScore],
    tags: &[Text],
    limit: Limit,
) -> wasmtime::Result<Vec<Result<DeclaredRuling, PluginError>>> {
    let Rulings {
        text,
        results,
        cards,
        factors,
        signals,
        verdicts,
    } = packed;
    let longest = |names: &mut dyn Iterator<Item = &Text>| names.map(|name| name.len()).max();
    let card_names = longest(&mut scores.iter().map(|score| &score.name)).unwrap_or(0)
        + longest(&mut scores.iter().flat_map(|score| &score.bands)).unwrap_or(0);
    let factor_name = longest(&mut scores.iter().flat_map(|score| &score.factors)).unwrap_or(0);
    // A verdict carries each declared tag at most once.
    let all_tags: usize = tags
        .iter()
        .map(|tag| tag.len().saturating_add(TAG_BYTES))
        .sum();
    let listed = [
        cards
            .len()
            .saturating_mul(CARD_BYTES.saturating_add(card_names)),
        factors
            .len()
            .saturating_mul(FACTOR_BYTES.saturating_add(factor_name)),
        signals.len().saturating_mul(SIGNAL_BYTES),
        verdicts
            .len()
            .saturating_mul(VERDICT_BYTES.saturating_add(all_tags)),
    ];
    let read = Reader::<()>::new(&text, &[], "", 0, results.len(), limit)
        .declaring(listed.into_iter().fold(0, usize::saturating_add));
    let mut unpacked = Vec::with_capacity(results.len());
    for result in results {
        let ruling = match result {
            Ok(ruling) => ruling,
            Err(error) => {
                unpacked.push(Err(v7_plugin_error(error)));
                continue;
            }
        };
        let mut computed = 0u64;
        let ruled_cards = each(
            read.elements_of(&cards, "cards", CARD_BYTES, v7_span(ruling.cards))?,
            |card| {
                // A ruleset declares at most 16 scores.
                let bit = 1u64.checked_shl(card.score).unwrap_or(0);
                if computed & bit != 0 {
                    return Err(MalformedResults(format!(
                        "a ruling has two cards of the score {}",
                        card.score
                    )));
                }
                computed |= bit;
                declared_card(
                    &read,
                    card,
                    |span| read.elements_of(&factors, "factors", FACTOR_BYTES, span),
                    scores,
                )
            },
        )?;
        let span = v7_span(ruling.signals);
        let ruled_signals = each(
            read.elements_of(&signals, "signals", SIGNAL_BYTES, span)?,
            |signal| {
                Ok(Signal {
                    name: read.string(signal.name)?,
                    severity: severity(signal.severity),
                    reason: read.string(signal.reason)?,
                    dedup_key: read.string(signal.dedup_key)?,
                    cooldown_secs: signal.cooldown_secs,
                })
            },
        )?;
        let ruled_verdicts = each(
            read.elements_of(&verdicts, "verdicts", VERDICT_BYTES, span)?,
            |verdict| {
                let reason = v4::Span {
                    start: verdict.reason.start,
                    len: verdict.reason.len,
                };
                Ok(Verdict {
                    applies: verdict.applies,
                    reason: read.string(reason)?,
                    policy_tags: tags_by_bit(&read, verdict.policy_tags, tags)?,
                })
            },
        )?;
        unpacked.push(Ok(DeclaredRuling(Ruling {
            cards: ruled_cards,
            signals: ruled_signals,
            verdicts: ruled_verdicts,
        })));
    }
    Ok(unpacked)
}

plugin_error_of!(v7_plugin_error, v7);

/// A 0.7 span as 0.4's (the same record).
fn v7_span(span: v7::Span) -> v4::Span {
    v4::Span {
        start: span.start,
        len: span.len,
    }
}

/// The declared `what` at position `at` of `declared` (the plugin's
/// `whats`), or the malformed answer a position past them is.
fn declared_at<'a, T>(
    declared: &'a [T],
    at: u32,
    what: &str,
    whats: &str,
) -> Result<&'a T, MalformedResults> {
    usize::try_from(at)
        .ok()
        .and_then(|at| declared.get(at))
        .ok_or_else(|| {
            MalformedResults(format!(
                "a card names {what} {at}, but {} {whats} are declared there",
                declared.len()
            ))
        })
}

/// A 0.6 span as 0.4's (the same record).
fn v4_span(span: v6::Span) -> v4::Span {
    v4::Span {
        start: span.start,
        len: span.len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-item output limit, for as many items as a test's results.
    const LIMIT: Limit = per_item(256 << 10);

    /// An output limit of `bytes` an item, for as many items as a test's
    /// results.
    const fn per_item(bytes: usize) -> Limit {
        Limit {
            per_item: bytes,
            items: usize::MAX,
        }
    }

    fn span(start: u32, len: u32) -> v4::Span {
        v4::Span { start, len }
    }

    #[test]
    fn packed_score_cards_unpack_into_the_cards_they_stand_for() {
        let packed = v4::PackedScoreCards {
            text: "healthoptimalusagesteady".into(),
            results: vec![
                Ok(v4::PackedScoreCard {
                    name: span(0, 6),
                    value: 80.0,
                    band: span(6, 7),
                    rag: v4::Rag::Green,
                    factors: span(0, 1),
                }),
                Err(v4::PluginError::InsufficientData("new account".into())),
            ],
            factors: vec![v4::PackedFactor {
                name: span(13, 5),
                weight: 1.0,
                raw: 0.8,
                value: 80.0,
                contribution: 80.0,
                note: span(18, 6),
            }],
        };
        let cards = cards(packed, LIMIT).unwrap();
        let card = cards[0].as_ref().unwrap();
        assert_eq!(
            (card.name.as_str(), card.band.as_str()),
            ("health", "optimal")
        );
        assert_eq!(card.rag, Rag::Green);
        assert_eq!(card.factors[0].name, "usage");
        assert_eq!(card.factors[0].note, "steady");
        assert_eq!(
            cards[1],
            Err(PluginError::InsufficientData("new account".into()))
        );
    }

    #[test]
    fn a_span_outside_the_text_or_a_list_is_malformed_not_a_panic() {
        let outside_text = v4::PackedSignals {
            text: "usage.drop".into(),
            results: vec![Ok(span(0, 1))],
            signals: vec![v4::PackedSignal {
                name: span(0, 10),
                severity: v4::Severity::High,
                reason: span(5, 10),
                dedup_key: span(0, 0),
                cooldown_secs: 0,
            }],
        };
        let error = signals(outside_text, LIMIT).unwrap_err();
        assert!(
            error.downcast_ref::<MalformedResults>().is_some(),
            "{error}"
        );
        let outside_list = v4::PackedVerdicts {
            text: String::new(),
            results: vec![Ok(v4::PackedVerdict {
                applies: true,
                reason: span(0, 0),
                policy_tags: span(u32::MAX, 2),
            })],
            tags: Vec::new(),
        };
        let error = verdicts(outside_list, LIMIT).unwrap_err();
        assert!(error.to_string().contains("policy tags"), "{error}");
    }

    #[test]
    fn shared_spans_are_unpacked_within_the_output_limit_of_every_result() {
        // Two results sharing one signal whose name is also its dedup key.
        let signal = v4::PackedSignal {
            name: span(0, 4),
            severity: v4::Severity::Low,
            reason: span(0, 0),
            dedup_key: span(0, 4),
            cooldown_secs: 0,
        };
        let shared = v4::PackedSignals {
            text: "drop".into(),
            results: vec![Ok(span(0, 1)), Ok(span(0, 1))],
            signals: vec![signal],
        };
        let unpacked = signals(shared, LIMIT).unwrap();
        assert_eq!(unpacked[1].as_ref().unwrap()[0].dedup_key, "drop");
        // A thousand results each pointing at all of a 1 KiB text: 1 MiB
        // unpacked, beyond a thousand results of 64 bytes each.
        let all = v4::PackedSignal {
            name: span(0, 1024),
            ..signal
        };
        let amplified = v4::PackedSignals {
            text: "x".repeat(1024),
            results: (0..1000).map(|_| Ok(span(0, 1))).collect(),
            signals: vec![all],
        };
        let error = signals(
            amplified,
            Limit {
                per_item: 64,
                items: 1000,
            },
        )
        .unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
    }

    #[test]
    fn results_past_the_calls_items_get_no_budget_of_their_own() {
        // A call given one item answers a thousand results, each pointing
        // at all of a 1 KiB text: the budget is one item's limit (and what
        // was returned), not a thousand items', so the answer is refused
        // before the host copies the text a thousand times.
        let signal = v4::PackedSignal {
            name: span(0, 1024),
            severity: v4::Severity::Low,
            reason: span(0, 0),
            dedup_key: span(0, 1),
            cooldown_secs: 0,
        };
        let flood = || v4::PackedSignals {
            text: "x".repeat(1024),
            results: (0..1000).map(|_| Ok(span(0, 1))).collect(),
            signals: vec![signal],
        };
        let limit = |items| Limit {
            per_item: 64 << 10,
            items,
        };
        let error = signals(flood(), limit(1)).unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
        // Given a thousand items, the same answer is within their limits.
        assert_eq!(signals(flood(), limit(1000)).unwrap().len(), 1000);
    }

    #[test]
    fn a_span_that_cuts_a_character_is_malformed() {
        let packed = v4::PackedVerdicts {
            text: "é".into(),
            results: vec![Ok(v4::PackedVerdict {
                applies: false,
                reason: span(0, 1),
                policy_tags: span(0, 0),
            })],
            tags: Vec::new(),
        };
        assert!(verdicts(packed, LIMIT).is_err());
    }

    fn tagged(reason: v5::Span, policy_tags: u64) -> Result<v5::PackedVerdict, v5::PluginError> {
        Ok(v5::PackedVerdict {
            applies: true,
            reason,
            policy_tags,
        })
    }

    #[test]
    fn a_contract_0_5_verdict_carries_the_declared_tags_its_bits_name_in_the_declared_order() {
        let declared: Vec<Text> = ["sox", "hipaa", "audit-trail"]
            .into_iter()
            .map(Text::new)
            .collect();
        let reason = v5::Span { start: 0, len: 2 };
        let packed = v5::PackedVerdicts {
            text: "ok".into(),
            results: vec![
                tagged(reason, 0b101),
                tagged(reason, 0),
                Err(v5::PluginError::InsufficientData("later".into())),
                tagged(reason, 0b111),
            ],
        };
        let unpacked = tagged_verdicts(packed, &declared, LIMIT).unwrap();
        let tags = |at: usize| unpacked[at].as_ref().unwrap().0.policy_tags.clone();
        assert_eq!(tags(0), ["sox", "audit-trail"]);
        assert!(tags(1).is_empty());
        assert!(
            matches!(&unpacked[2], Err(PluginError::InsufficientData(m)) if m == "later"),
            "{:?}",
            unpacked[2]
        );
        assert_eq!(tags(3), ["sox", "hipaa", "audit-trail"]);
        assert_eq!(unpacked[3].as_ref().unwrap().0.reason, "ok");
    }

    #[test]
    fn a_bit_with_no_declared_tag_is_malformed_up_to_the_sixty_fourth() {
        let reason = v5::Span { start: 0, len: 0 };
        let three: Vec<Text> = ["a", "b", "c"].into_iter().map(Text::new).collect();
        let packed = |bits| v5::PackedVerdicts {
            text: String::new(),
            results: vec![tagged(reason, bits)],
        };
        let error = tagged_verdicts(packed(0b1000), &three, LIMIT).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("names policy tag 3, but the plugin declares 3"),
            "{error}"
        );
        let error = tagged_verdicts(packed(1 << 63), &[], LIMIT).unwrap_err();
        assert!(error.to_string().contains("declares 0 tags"), "{error}");
        // Sixty-four declared: every bit names one.
        let all: Vec<Text> = (0..64).map(|n| Text::new(format!("tag-{n}"))).collect();
        let unpacked = tagged_verdicts(packed(u64::MAX), &all, LIMIT).unwrap();
        let tags = &unpacked[0].as_ref().unwrap().0.policy_tags;
        assert_eq!(tags.len(), 64);
        assert_eq!(tags[63], "tag-63");
    }

    #[test]
    fn declared_tags_are_bounded_by_the_declaration_and_shared_spans_still_by_the_budget() {
        let long: Vec<Text> = (0..64).map(|n| Text::new(format!("{n:0>100}"))).collect();
        // A thousand verdicts of 64 tags of 100 bytes: 6.6 MB unpacked,
        // beyond a thousand results of 1 KiB each, but no more than the
        // declaration allows each verdict; the output check then refuses
        // each as too large.
        let none = v5::Span { start: 0, len: 0 };
        let packed = v5::PackedVerdicts {
            text: String::new(),
            results: (0..1000).map(|_| tagged(none, u64::MAX)).collect(),
        };
        let unpacked = tagged_verdicts(packed, &long, per_item(1024)).unwrap();
        assert_eq!(unpacked[999].as_ref().unwrap().0.policy_tags.len(), 64);
        // The same verdicts sharing one reason of 10,000 bytes: 10 MB of
        // copies, which neither the limit nor what was returned covers.
        let shared = v5::Span {
            start: 0,
            len: 10_000,
        };
        let packed = v5::PackedVerdicts {
            text: "x".repeat(10_000),
            results: (0..1000).map(|_| tagged(shared, u64::MAX)).collect(),
        };
        let error = tagged_verdicts(packed, &long, per_item(1024)).unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
    }

    /// A declared score: `health` with three bands and two factors.
    fn health() -> DeclaredScore {
        let texts = |names: &[&str]| names.iter().map(|name| Text::new(name)).collect();
        DeclaredScore {
            name: Text::new("health"),
            bands: texts(&["critical", "stable", "optimal"]),
            factors: texts(&["usage", "login-trend"]),
        }
    }

    fn v6_span(start: u32, len: u32) -> v6::Span {
        v6::Span { start, len }
    }

    fn v6_factor(factor: u32, note: v6::Span) -> v6::PackedFactor {
        v6::PackedFactor {
            factor,
            weight: 0.5,
            raw: 1.0,
            value: 80.0,
            contribution: 40.0,
            note,
        }
    }

    fn v6_card(score: u32, band: u32, factors: v6::Span) -> v6::PackedScoreCard {
        v6::PackedScoreCard {
            score,
            value: 80.0,
            band,
            rag: v6::Rag::Green,
            factors,
        }
    }

    #[test]
    fn a_contract_0_6_card_carries_the_declared_names_its_positions_name_and_its_own_notes() {
        let packed = v6::PackedScoreCards {
            text: "steadyup 5%".into(),
            results: vec![
                Ok(v6_card(0, 2, v6_span(0, 2))),
                Err(v6::PluginError::InsufficientData("new account".into())),
                // Factors in another order than declared, one left out.
                Ok(v6_card(0, 0, v6_span(2, 1))),
            ],
            factors: vec![
                v6_factor(0, v6_span(0, 6)),
                v6_factor(1, v6_span(6, 5)),
                v6_factor(1, v6_span(0, 0)),
            ],
        };
        let unpacked = declared_cards(packed, &[health()], LIMIT).unwrap();
        let card = |at: usize| &unpacked[at].as_ref().unwrap().0;
        assert_eq!(
            (card(0).name.as_str(), card(0).band.as_str()),
            ("health", "optimal")
        );
        assert_eq!(card(0).rag, Rag::Green);
        let names = |at: usize| -> Vec<(&str, &str)> {
            card(at)
                .factors
                .iter()
                .map(|f| (f.name.as_str(), f.note.as_str()))
                .collect()
        };
        assert_eq!(names(0), [("usage", "steady"), ("login-trend", "up 5%")]);
        assert!(
            matches!(&unpacked[1], Err(PluginError::InsufficientData(m)) if m == "new account"),
            "{:?}",
            unpacked[1]
        );
        assert_eq!(card(2).band, "critical");
        assert_eq!(names(2), [("login-trend", "")]);
    }

    #[test]
    fn a_card_naming_a_score_band_or_factor_past_the_declared_ones_is_malformed() {
        let packed = |card, factor| v6::PackedScoreCards {
            text: String::new(),
            results: vec![Ok(card)],
            factors: vec![v6_factor(factor, v6_span(0, 0))],
        };
        for (card, factor, expected) in [
            (
                v6_card(1, 0, v6_span(0, 1)),
                0,
                "names score 1, but 1 scores",
            ),
            (v6_card(0, 3, v6_span(0, 1)), 0, "names band 3, but 3 bands"),
            (
                v6_card(0, 0, v6_span(0, 1)),
                2,
                "names factor 2, but 2 factors",
            ),
            (
                v6_card(0, 0, v6_span(0, 1)),
                u32::MAX,
                "names factor 4294967295",
            ),
        ] {
            let error = declared_cards(packed(card, factor), &[health()], LIMIT).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
        // A plugin that declares no score can return no card.
        let error =
            declared_cards(packed(v6_card(0, 0, v6_span(0, 0)), 0), &[], LIMIT).unwrap_err();
        assert!(error.to_string().contains("but 0 scores"), "{error}");
    }

    #[test]
    fn declared_names_count_against_the_output_limit_of_every_result() {
        let long = |n: usize| Text::new(format!("{n:0>120}"));
        let declared = DeclaredScore {
            name: long(0),
            bands: vec![long(1)],
            factors: (0..64).map(long).collect(),
        };
        // A thousand cards listing the 64 factors of 120 bytes: 7.8 MB
        // unpacked, beyond a thousand results of 1 KiB each, from a few
        // hundred kilobytes returned.
        let packed = v6::PackedScoreCards {
            text: String::new(),
            results: (0..1000)
                .map(|_| Ok(v6_card(0, 0, v6_span(0, 64))))
                .collect(),
            factors: (0..64).map(|at| v6_factor(at, v6_span(0, 0))).collect(),
        };
        // 4 KiB a result: the factors' records alone would fit.
        let error = declared_cards(packed, &[declared], per_item(4096)).unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
    }

    #[test]
    fn a_card_listing_a_factor_twice_is_malformed() {
        let packed = v6::PackedScoreCards {
            text: String::new(),
            results: vec![Ok(v6_card(0, 0, v6_span(0, 3)))],
            factors: vec![
                v6_factor(1, v6_span(0, 0)),
                v6_factor(0, v6_span(0, 0)),
                v6_factor(1, v6_span(0, 0)),
            ],
        };
        let error = declared_cards(packed, &[health()], LIMIT).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("lists the factor `login-trend` twice"),
            "{error}"
        );
    }

    #[test]
    fn a_result_over_the_output_limit_unpacks_with_its_declared_names_for_the_size_check() {
        // One note of 10,000 bytes, over a limit of 1 KiB: what was
        // returned bounds the unpacking, declared names included, and the
        // output check then refuses the result as too large.
        let packed = v6::PackedScoreCards {
            text: "x".repeat(10_000),
            results: vec![Ok(v6_card(0, 2, v6_span(0, 1)))],
            factors: vec![v6_factor(1, v6_span(0, 10_000))],
        };
        let unpacked = declared_cards(packed, &[health()], per_item(1024)).unwrap();
        let card = &unpacked[0].as_ref().unwrap().0;
        assert_eq!(card.factors[0].name, "login-trend");
        assert_eq!(card.factors[0].note.len(), 10_000);

        let declared: Vec<Text> = ["sox", "hipaa"].into_iter().map(Text::new).collect();
        let packed = v5::PackedVerdicts {
            text: "x".repeat(10_000),
            results: vec![tagged(
                v5::Span {
                    start: 0,
                    len: 10_000,
                },
                0b11,
            )],
        };
        let unpacked = tagged_verdicts(packed, &declared, per_item(1024)).unwrap();
        let verdict = &unpacked[0].as_ref().unwrap().0;
        assert_eq!(verdict.policy_tags, ["sox", "hipaa"]);
        assert_eq!(verdict.reason.len(), 10_000);
    }
}
