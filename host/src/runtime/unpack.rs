//! Contract 0.4's and 0.5's packed results, unpacked into the host's types
//! (a condition's signals are packed for it by `lower::LoweredCheckItems`).
//! 0.5 differs only in its verdicts: their tags are bits of the plugin's
//! declared tags ([`tagged_verdicts`]), not spans.
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
use super::output::DeclaredVerdict;
use super::results::{Factor, ScoreCard, Signal, Text, Verdict};

/// Packed results that point outside their text or lists, at a string cut
/// inside a character, or at more than their budget.
#[derive(Debug, thiserror::Error)]
#[error("the plugin's packed results are malformed: {0}")]
pub(crate) struct MalformedResults(String);

/// What a factor, a signal and a policy tag count for besides their
/// strings: the sizes `PluginOutput::size` gives them.
const FACTOR_BYTES: usize = 32;
const SIGNAL_BYTES: usize = 8;
const TAG_BYTES: usize = 4;

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
}

impl<'a, T> Reader<'a, T> {
    /// The reader of `results` results returned as `text` and `list`, under
    /// a per-item output limit of `limit` bytes.
    fn new(
        text: &'a str,
        list: &'a [T],
        what: &'static str,
        charge: usize,
        results: usize,
        limit: usize,
    ) -> Self {
        let returned = text.len().saturating_add(list.len().saturating_mul(charge));
        let total = results.saturating_mul(limit).max(returned);
        Self {
            text,
            list,
            what,
            charge,
            left: Cell::new(total),
            total,
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
        let (what, len) = (self.what, self.list.len());
        let start = span.start as usize;
        let end = start.saturating_add(span.len as usize);
        let elements = self.list.get(start..end).ok_or_else(|| {
            MalformedResults(format!(
                "{what} {start}..{end} are not among the {len} returned"
            ))
        })?;
        self.spend(elements.len().saturating_mul(self.charge))?;
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
    limit: usize,
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
    limit: usize,
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
    limit: usize,
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
    limit: usize,
) -> wasmtime::Result<Vec<Result<DeclaredVerdict, PluginError>>> {
    let v5::PackedVerdicts { text, results } = packed;
    let read = Reader::<()>::new(&text, &[], "policy tags", TAG_BYTES, results.len(), limit);
    // The bits that name a declared tag: the low `declared.len()`.
    let known = match declared.len() {
        64.. => u64::MAX,
        len => (1u64 << len) - 1,
    };
    let mut unpacked = Vec::with_capacity(results.len());
    for result in results {
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(error) => {
                unpacked.push(Err(v5_plugin_error(error)));
                continue;
            }
        };
        let mut bits = verdict.policy_tags;
        if bits & !known != 0 {
            return Err(MalformedResults(format!(
                "a verdict names policy tag {}, but the plugin declares {} tags",
                (bits & !known).trailing_zeros(),
                declared.len()
            ))
            .into());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-item output limit.
    const LIMIT: usize = 256 << 10;

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
        let error = signals(amplified, 64).unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
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
    fn declared_tags_count_against_the_output_limit_of_every_result() {
        let long: Vec<Text> = (0..64).map(|n| Text::new(format!("{n:0>100}"))).collect();
        let reason = v5::Span { start: 0, len: 0 };
        // A thousand verdicts of 64 tags of 100 bytes: 6.6 MB unpacked,
        // beyond a thousand results of 1 KiB each.
        let packed = v5::PackedVerdicts {
            text: String::new(),
            results: (0..1000).map(|_| tagged(reason, u64::MAX)).collect(),
        };
        let error = tagged_verdicts(packed, &long, 1024).unwrap_err();
        assert!(error.to_string().contains("unpack to more than"), "{error}");
    }
}
