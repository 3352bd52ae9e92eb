//! `POST /api/v1/events` and the automation triggers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::reads::Action;
use super::{
    ApiError, ApiJson, ApiQuery, AppState, Caller, MAX_BATCH, Problem, check_id, format_time,
    parse_time,
};
use crate::history::DAY_MS;
use crate::runtime::bindings::types::Event;
use crate::store::{AuditEntry, IngestJob, NewEvent, Role, Stored, now_ms};

/// How long `?wait=evaluated` waits at most.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// One event as posted.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The event's id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The account it belongs to (must exist).
    pub account_id: String,
    /// Dotted kind, for example `usage.daily`: 1–128 lowercase letters,
    /// digits, `.`, `-`, `_`.
    #[schema(example = "usage.daily", pattern = "^[a-z0-9._-]{1,128}$")]
    pub kind: String,
    /// RFC 3339; at most a day ahead.
    #[schema(example = "2026-06-01T10:00:00Z", format = DateTime)]
    pub occurred_at: String,
    /// A JSON object; numeric fields become metrics (`active_users`,
    /// `logins`, …).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Seen again with the same body, the first answer is returned; with
    /// another body, 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn empty_object() -> serde_json::Value {
    json!({})
}

/// One event or a batch of up to 1,000.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EventsBody {
    /// One event.
    One(EventBody),
    /// A batch.
    Many(Vec<EventBody>),
}

/// What became of one posted event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestedEvent {
    /// The event's id (the first event's, for a repeated idempotency key).
    pub id: String,
    /// Its position in the event log.
    pub seq: i64,
    /// `stored`.
    pub status: String,
}

/// The answer to a post of events, after they are committed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestAnswer {
    /// One per posted event, in order.
    pub events: Vec<IngestedEvent>,
}

/// The values `wait` takes.
pub(super) const WAITS: &[&str] = &["committed", "evaluated"];

/// `wait=evaluated` answers only once the events are evaluated.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct IngestQuery {
    /// `committed` (default): answer after the commit; `evaluated`: also
    /// wait (up to 10 s) until the pipeline has evaluated them, so scores
    /// and actions read next include them.
    wait: Option<String>,
}

fn validate_event(index: usize, body: &EventBody, state: &AppState) -> Result<NewEvent, ApiError> {
    let at = |field: &str| format!("[{index}].{field}");
    check_id(&at("account_id"), &body.account_id)?;
    let kind_ok = !body.kind.is_empty()
        && body.kind.len() <= 128
        && body
            .kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if !kind_ok {
        return Err(ApiError::invalid(
            &at("kind"),
            format!(
                "`{}` is not an event kind: lowercase letters, digits, `.`, `-`, `_`",
                body.kind
            ),
        ));
    }
    let occurred_at = parse_time(&at("occurred_at"), &body.occurred_at)?;
    // Plugins evaluate at the event's time, so a far-future event would move
    // the account's clock; allow a day of skew.
    if occurred_at > now_ms() + DAY_MS {
        return Err(ApiError::invalid(
            &at("occurred_at"),
            format!("`{}` is more than a day in the future", body.occurred_at),
        ));
    }
    if !body.payload.is_object() {
        return Err(ApiError::invalid(
            &at("payload"),
            "must be a JSON object".into(),
        ));
    }
    if let Some(key) = &body.idempotency_key {
        check_id(&at("idempotency_key"), key)?;
    }
    // The canonical body protects a key or a client's id against reuse with
    // another body; without either there is nothing to protect.
    let canonical = if body.id.is_some() || body.idempotency_key.is_some() {
        serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?
    } else {
        String::new()
    };
    let id = match &body.id {
        Some(id) => {
            check_id(&at("id"), id)?;
            id.clone()
        }
        None => format!("evt-{}", state.ids.next()),
    };
    Ok(NewEvent {
        event: Event {
            id,
            account_id: body.account_id.clone(),
            kind: body.kind.clone(),
            occurred_at,
            payload: body.payload.to_string(),
        },
        idempotency_key: body.idempotency_key.clone(),
        body: canonical,
        generated_id: body.id.is_none(),
    })
}

/// Commits validated events for `caller`; refuses events for unknown
/// accounts.
async fn commit(
    state: &AppState,
    caller: &Caller,
    events: Vec<NewEvent>,
) -> Result<Vec<Stored>, ApiError> {
    let accounts: Vec<&str> = events
        .iter()
        .map(|e| e.event.account_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known = state.known_accounts(&accounts).await?;
    if let Some(account_id) = accounts.iter().find(|id| !known.contains(**id)) {
        return Err(ApiError::UnknownAccount(format!(
            "account `{account_id}` is unknown; create it with PUT /api/v1/customers/{account_id}"
        )));
    }
    let audits = events
        .iter()
        .map(|new| AuditEntry {
            at: now_ms(),
            actor: caller.actor(),
            action: "event.ingest".into(),
            resource: format!("event:{}", new.event.id),
            origin: caller.origin.clone(),
            success: true,
            details: json!({"account_id": new.event.account_id, "kind": new.event.kind}),
        })
        .collect();
    Ok(state.service.ingest(IngestJob { events, audits }).await?)
}

/// Post one event or a batch (operator). The answer comes only after the
/// events (each with its audit entry) are committed; the pipeline then
/// evaluates them in the background, or before answering with
/// `?wait=evaluated`. Repeating an idempotency key (or event id) with the
/// same body answers as the first time, writing nothing
/// (`Idempotent-Replayed: true`); with another body, 409.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    params(IngestQuery),
    request_body(content = EventsBody, description = "One event, or an array of 1 to 1,000"),
    responses(
        (status = 202, description = "Committed", body = IngestAnswer,
            headers(("Idempotent-Replayed" = String, description = "`true` when every event's idempotency key was posted before with the same body: the first answer, nothing stored again"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An idempotency key or event id was used before with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An event has a field the API cannot take (the `field` says which)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "With `wait=evaluated`: not evaluated within 10 s (the events are committed); or the database is unreachable, or the host is shutting down", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn post_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<IngestQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let wait = match query.wait.as_deref() {
        None | Some("committed") => false,
        Some("evaluated") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "wait",
                format!("`{other}` is not a wait; expected committed or evaluated"),
            ));
        }
    };
    // One event or an array of them; each decoded on its own so an error
    // names the event's index and the field.
    let decode = |index: usize, value: serde_json::Value| {
        serde_json::from_value::<EventBody>(value)
            .map_err(|e| ApiError::invalid(&format!("[{index}]"), e.to_string()))
    };
    let bodies = match body {
        serde_json::Value::Array(items) => {
            if items.len() > MAX_BATCH {
                return Err(ApiError::invalid(
                    "events",
                    format!("{} events; at most {MAX_BATCH} per request", items.len()),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| decode(index, item))
                .collect::<Result<Vec<_>, _>>()?
        }
        single => vec![decode(0, single)?],
    };
    if bodies.is_empty() {
        return Err(ApiError::invalid("events", "the batch is empty".into()));
    }
    let events = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| validate_event(i, body, &state))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = events.iter().map(|e| e.event.id.clone()).collect();
    let stored = commit(&state, &caller, events).await?;
    let mut replayed = true;
    let mut seqs = Vec::with_capacity(stored.len());
    let answer = IngestAnswer {
        events: stored
            .iter()
            .zip(ids)
            .map(|(outcome, id)| {
                let (id, seq) = match outcome {
                    Stored::New { seq } => {
                        replayed = false;
                        (id, *seq)
                    }
                    Stored::Duplicate { first_event, seq } => (first_event.clone(), *seq),
                };
                seqs.push(seq);
                IngestedEvent {
                    id,
                    seq,
                    status: "stored".into(),
                }
            })
            .collect(),
    };
    if wait && !state.service.wait_evaluated(&seqs, WAIT_LIMIT).await? {
        return Err(ApiError::Unavailable(
            "the events are committed but were not evaluated within 10 s; read the scores later"
                .into(),
        ));
    }
    let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Which account an automation trigger evaluates, and when.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// The account.
    pub account_id: String,
    /// The evaluation time (RFC 3339); default now.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

/// A signal an evaluation raised and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignalOut {
    /// The signal's name (`health.critical`, `usage.low`, …).
    pub name: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Which rule fired, on which values.
    pub reason: String,
    /// The trigger or playbook that raised it (`plugin:name@version`).
    pub source: String,
    /// `acted`, `suppressed`, `not-applicable` or `action-failed`, with
    /// its details (policy tags, until when, why).
    #[schema(value_type = Object)]
    pub disposition: serde_json::Value,
}

/// What an automation trigger found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TriggerResult {
    /// The trigger.
    pub trigger: String,
    /// The account.
    pub account_id: String,
    /// The evaluation's event (`automation.<trigger>`).
    pub event_id: String,
    /// The evaluation time (RFC 3339).
    #[schema(format = DateTime)]
    pub evaluated_at: String,
    /// The trigger's signals (others raised by the same evaluation are
    /// recorded too, but not listed here).
    pub signals: Vec<SignalOut>,
    /// The actions planned for them.
    pub actions: Vec<Action>,
}

/// The automation triggers and the signal names each reports.
pub(super) const TRIGGERS: &[(&str, &[&str])] = &[
    ("health-score", &["health."]),
    (
        "usage-decline",
        &[
            "usage.none",
            "usage.low",
            "usage.login-decline",
            "health.trend-down",
        ],
    ),
    ("renewal-risk", &["renewal."]),
    ("expansion-ready", &["expansion.", "usage.growth"]),
];

/// Run an automation trigger for one account now (operator): the account
/// is evaluated by every plugin (as an event `automation.<trigger>`,
/// committed and audited), and the signals of this trigger, with the
/// actions planned for them, are returned. `health-score` reports
/// `health.*` signals; `usage-decline` `usage.none`, `usage.low`,
/// `usage.login-decline` and `health.trend-down`; `renewal-risk`
/// `renewal.*`; `expansion-ready` `expansion.*` and `usage.growth`.
#[utoipa::path(post, path = "/api/v1/automation/triggers/{trigger}", tag = "automation", security(("bearer" = [])),
    params(("trigger" = String, Path, description = "health-score, usage-decline, renewal-risk or expansion-ready")),
    request_body = TriggerBody,
    responses(
        (status = 200, description = "Evaluated", body = TriggerResult),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trigger", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown account or bad time", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not evaluated within 10 s", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn post_trigger(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(trigger): Path<String>,
    ApiJson(body): ApiJson<TriggerBody>,
) -> Result<Json<TriggerResult>, ApiError> {
    caller.require(Role::Operator)?;
    let Some((trigger, prefixes)) = TRIGGERS.iter().find(|(name, _)| *name == trigger) else {
        return Err(ApiError::NotFound(format!(
            "no trigger `{trigger}`; the triggers are health-score, usage-decline, renewal-risk and expansion-ready"
        )));
    };
    check_id("account_id", &body.account_id)?;
    let at = match &body.at {
        Some(t) => parse_time("at", t)?,
        None => now_ms(),
    };
    if at > now_ms() + DAY_MS {
        return Err(ApiError::invalid(
            "at",
            "is more than a day in the future".into(),
        ));
    }
    let event = EventBody {
        id: None,
        account_id: body.account_id.clone(),
        kind: format!("automation.{trigger}"),
        occurred_at: format_time(at),
        payload: json!({}),
        idempotency_key: None,
    };
    let new = validate_event(0, &event, &state)?;
    let event_id = new.event.id.clone();
    let stored = commit(&state, &caller, vec![new]).await?;
    let seqs: Vec<i64> = stored
        .iter()
        .map(|s| match s {
            Stored::New { seq } | Stored::Duplicate { seq, .. } => *seq,
        })
        .collect();
    if !state.service.wait_evaluated(&seqs, WAIT_LIMIT).await? {
        return Err(ApiError::Unavailable(format!(
            "the trigger's event `{event_id}` is committed but was not evaluated within 10 s"
        )));
    }
    let matches = |name: &str| {
        prefixes
            .iter()
            .any(|p| name == *p || (p.ends_with('.') && name.starts_with(p)))
    };
    let signals: Vec<SignalOut> = state
        .store
        .signals_for_event(&event_id)
        .await?
        .into_iter()
        .filter(|s| matches(&s.signal.name))
        .map(|s| SignalOut {
            name: s.signal.name,
            severity: s.signal.severity,
            reason: s.signal.reason,
            source: s.signal.source,
            disposition: s.signal.disposition,
        })
        .collect();
    let actions = state
        .store
        .intents_for_event(&event_id)
        .await?
        .into_iter()
        .filter(|i| matches(&i.intent.signal))
        .map(Action::from)
        .collect();
    Ok(Json(TriggerResult {
        trigger: (*trigger).to_string(),
        account_id: body.account_id,
        event_id,
        evaluated_at: format_time(at),
        signals,
        actions,
    }))
}
