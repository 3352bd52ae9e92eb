//! What a plugin function is given: the account, the event, the evaluation
//! time and the scores computed so far, as views of the batch the host sent.
//!
//! The host sends a plugin its items' contexts packed into one text and a
//! few lists (since contract 0.3). The export the attribute macros generate hands
//! each item's context to the plugin function as a [`Context`] whose strings
//! borrow that text ([`Cow::Borrowed`]) instead of being copied out of it:
//! a plugin pays only for what it reads. In the bench rule set, copying
//! every field of every item's context, read or not, made the pipeline
//! take 1.06–1.10x the time (BENCHMARKS.md).
//!
//! Natively, the builders of [`crate::testing`] make contexts that own
//! their strings ([`Cow::Owned`], `Context<'static>`), and a context of the
//! WIT contract's own record type converts with `From`.
//!
//! The strings read as `&str` wherever one is expected (`Cow<str>`
//! dereferences to `str`): `ctx.event.kind == "usage.daily"`,
//! `ctx.event.payload.contains("...")`, `format!("{}", ctx.account.id)`.
//! To match on one, take `&*ctx.event.kind` or `ctx.event.kind.as_ref()`.

use std::borrow::Cow;

use crate::wit::vigil::plugin::types as wit;
use crate::{Industry, Rag, Tier, Timestamp};

/// A custom account attribute (`region`, `csm`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute<'a> {
    /// The attribute name, for example `region` or `csm`.
    pub key: Cow<'a, str>,
    /// The attribute value.
    pub value: Cow<'a, str>,
}

/// A snapshot of a customer account as the host knows it at evaluation
/// time.
#[derive(Debug, Clone, PartialEq)]
pub struct Account<'a> {
    /// The account's stable identifier.
    pub id: Cow<'a, str>,
    /// The customer's display name.
    pub name: Cow<'a, str>,
    /// The commercial tier.
    pub tier: Tier,
    /// The industry.
    pub industry: Industry,
    /// Seats the customer pays for.
    pub licensed_seats: u32,
    /// Distinct users active in the last 30 days.
    pub active_users: u32,
    /// Annual recurring revenue in whole currency units.
    pub arr: u64,
    /// When the current contract started, if known.
    pub contract_start: Option<Timestamp>,
    /// When the contract renews, if known.
    pub renewal_date: Option<Timestamp>,
    /// Custom attributes, in the order the host keeps them.
    pub attributes: Vec<Attribute<'a>>,
}

impl Account<'_> {
    /// The value of attribute `key`, if the account has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .map(|attribute| &*attribute.value)
    }
}

/// The event that caused the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// The event's unique identifier.
    pub id: Cow<'a, str>,
    /// The account the event belongs to.
    pub account_id: Cow<'a, str>,
    /// The event kind, dotted: `usage.daily`, `support.ticket.opened`,
    /// `nps.response`, `payment.overdue`, `lead.engagement`, ...
    pub kind: Cow<'a, str>,
    /// When the event happened.
    pub occurred_at: Timestamp,
    /// The event payload as a JSON document (an object).
    pub payload: Cow<'a, str>,
}

/// A score computed earlier in the same evaluation, handed to triggers,
/// conditions and actions.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary<'a> {
    /// The score's name, for example `health` or `lead`.
    pub name: Cow<'a, str>,
    /// The value, 0 to 100.
    pub value: f64,
    /// The band label, for example `critical` or `hot`.
    pub band: Cow<'a, str>,
    /// The traffic-light reading of the value.
    pub rag: Rag,
}

/// What a plugin is given for one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Context<'a> {
    /// The account being evaluated.
    pub account: Account<'a>,
    /// The event that caused the evaluation.
    pub event: Event<'a>,
    /// The evaluation time. Plugins must use this, never a clock, so that a
    /// decision can be replayed bit-exactly.
    pub now: Timestamp,
    /// Scores computed earlier in this evaluation (empty for scorers).
    pub scores: Vec<ScoreSummary<'a>>,
}

impl Context<'_> {
    /// The score called `name` computed earlier in this evaluation, if any.
    pub fn score(&self, name: &str) -> Option<&ScoreSummary<'_>> {
        self.scores.iter().find(|score| score.name == name)
    }

    /// A copy of this context that owns its strings, to keep beyond the
    /// plugin call that lent it.
    pub fn into_owned(self) -> Context<'static> {
        Context {
            account: Account {
                id: owned(self.account.id),
                name: owned(self.account.name),
                tier: self.account.tier,
                industry: self.account.industry,
                licensed_seats: self.account.licensed_seats,
                active_users: self.account.active_users,
                arr: self.account.arr,
                contract_start: self.account.contract_start,
                renewal_date: self.account.renewal_date,
                attributes: self
                    .account
                    .attributes
                    .into_iter()
                    .map(|attribute| Attribute {
                        key: owned(attribute.key),
                        value: owned(attribute.value),
                    })
                    .collect(),
            },
            event: Event {
                id: owned(self.event.id),
                account_id: owned(self.event.account_id),
                kind: owned(self.event.kind),
                occurred_at: self.event.occurred_at,
                payload: owned(self.event.payload),
            },
            now: self.now,
            scores: self
                .scores
                .into_iter()
                .map(|score| ScoreSummary {
                    name: owned(score.name),
                    value: score.value,
                    band: owned(score.band),
                    rag: score.rag,
                })
                .collect(),
        }
    }
}

/// `text` as a string of its own.
fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

impl From<wit::Attribute> for Attribute<'static> {
    fn from(attribute: wit::Attribute) -> Self {
        Self {
            key: Cow::Owned(attribute.key),
            value: Cow::Owned(attribute.value),
        }
    }
}

impl From<wit::Account> for Account<'static> {
    fn from(account: wit::Account) -> Self {
        Self {
            id: Cow::Owned(account.id),
            name: Cow::Owned(account.name),
            tier: account.tier,
            industry: account.industry,
            licensed_seats: account.licensed_seats,
            active_users: account.active_users,
            arr: account.arr,
            contract_start: account.contract_start,
            renewal_date: account.renewal_date,
            attributes: account
                .attributes
                .into_iter()
                .map(Attribute::from)
                .collect(),
        }
    }
}

impl From<wit::Event> for Event<'static> {
    fn from(event: wit::Event) -> Self {
        Self {
            id: Cow::Owned(event.id),
            account_id: Cow::Owned(event.account_id),
            kind: Cow::Owned(event.kind),
            occurred_at: event.occurred_at,
            payload: Cow::Owned(event.payload),
        }
    }
}

impl From<wit::ScoreSummary> for ScoreSummary<'static> {
    fn from(score: wit::ScoreSummary) -> Self {
        Self {
            name: Cow::Owned(score.name),
            value: score.value,
            band: Cow::Owned(score.band),
            rag: score.rag,
        }
    }
}

/// A context of the WIT contract's record type (what a contract 0.1 export
/// received whole), as the SDK's.
impl From<wit::Context> for Context<'static> {
    fn from(ctx: wit::Context) -> Self {
        Self {
            account: ctx.account.into(),
            event: ctx.event.into(),
            now: ctx.now,
            scores: ctx.scores.into_iter().map(ScoreSummary::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_context() -> wit::Context {
        wit::Context {
            account: wit::Account {
                id: "a-01".into(),
                name: "Acme".into(),
                tier: Tier::Enterprise,
                industry: Industry::Healthcare,
                licensed_seats: 10,
                active_users: 7,
                arr: 1200,
                contract_start: Some(5),
                renewal_date: Some(9),
                attributes: vec![wit::Attribute {
                    key: "region".into(),
                    value: "emea".into(),
                }],
            },
            event: wit::Event {
                id: "e7".into(),
                account_id: "a-01".into(),
                kind: "usage.daily".into(),
                occurred_at: 42,
                payload: "{}".into(),
            },
            now: 43,
            scores: vec![wit::ScoreSummary {
                name: "health".into(),
                value: 71.5,
                band: "optimal".into(),
                rag: Rag::Green,
            }],
        }
    }

    #[test]
    fn a_contract_record_converts_field_for_field() {
        let ctx = Context::from(wit_context());
        assert_eq!(ctx.account.id, "a-01");
        assert_eq!(ctx.account.name, "Acme");
        assert_eq!(ctx.account.tier, Tier::Enterprise);
        assert_eq!(ctx.account.industry, Industry::Healthcare);
        assert_eq!(
            (ctx.account.licensed_seats, ctx.account.active_users),
            (10, 7)
        );
        assert_eq!(ctx.account.arr, 1200);
        assert_eq!(
            (ctx.account.contract_start, ctx.account.renewal_date),
            (Some(5), Some(9))
        );
        assert_eq!(ctx.account.attribute("region"), Some("emea"));
        assert_eq!(ctx.event.id, "e7");
        assert_eq!(ctx.event.account_id, "a-01");
        assert_eq!(ctx.event.kind, "usage.daily");
        assert_eq!(ctx.event.occurred_at, 42);
        assert_eq!(ctx.event.payload, "{}");
        assert_eq!(ctx.now, 43);
        let health = ctx.score("health").map(|s| (s.value, &*s.band, s.rag));
        assert_eq!(health, Some((71.5, "optimal", Rag::Green)));
    }

    #[test]
    fn lookups_by_name_miss_what_is_not_there() {
        let ctx = Context::from(wit_context());
        assert_eq!(ctx.account.attribute("csm"), None);
        assert!(ctx.score("lead").is_none());
    }

    #[test]
    fn a_borrowed_context_outlives_its_text_once_owned() {
        let text = String::from("a-01usage.daily");
        let mut borrowed = Context::from(wit_context());
        borrowed.account.id = Cow::Borrowed(&text[..4]);
        borrowed.event.kind = Cow::Borrowed(&text[4..]);
        let owned: Context<'static> = borrowed.into_owned();
        drop(text);
        assert!(matches!(owned.account.id, Cow::Owned(_)));
        assert!(matches!(owned.event.kind, Cow::Owned(_)));
        assert_eq!(owned, Context::from(wit_context()));
    }
}
