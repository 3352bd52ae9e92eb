//! The HTTP API (axum, JSON). Every error is `application/problem+json`
//! with a message that says what was wrong and where.
//!
//! Implemented so far: `GET /healthz`, `GET /readyz`,
//! `PUT /api/v1/customers/{id}`, `POST /api/v1/events`,
//! `GET /api/v1/customers/{id}/health-score`.

mod error;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

pub use error::{ApiError, ApiJson};

use crate::history::DAY_MS;
use crate::pipeline::{AccountState, Pipeline};
use crate::runtime::bindings::types::{Account, Attribute, Event, Industry, Tier};
use crate::store::{AuditEntry, NewEvent, Store, Stored, now_ms};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most events one request may carry.
pub const MAX_BATCH: usize = 1000;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    store: Store,
    pipeline: Arc<Pipeline>,
    /// Account states held in memory, rebuilt from the store on first use.
    accounts: Mutex<HashMap<String, AccountState>>,
    next_id: AtomicU64,
}

impl AppState {
    /// The state over `store` and `pipeline`.
    pub fn new(store: Store, pipeline: Arc<Pipeline>) -> Arc<Self> {
        Arc::new(Self {
            store,
            pipeline,
            accounts: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/customers/{id}", put(put_customer))
        .route("/api/v1/customers/{id}/health-score", get(health_score))
        .route("/api/v1/events", post(post_events))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the database is not reachable: {e}")))?;
    Ok(Json(
        json!({"status": "ready", "database": state.store.backend()}),
    ))
}

/// An account profile as the API takes and gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Display name.
    pub name: String,
    /// `enterprise`, `mid-market` or `small-business`.
    pub tier: String,
    /// `healthcare`, `financial-services`, `e-commerce`, `technology`,
    /// `manufacturing`, `education` or `other`.
    pub industry: String,
    /// Seats paid for.
    pub licensed_seats: u32,
    /// Users active in the last 30 days.
    #[serde(default)]
    pub active_users: u32,
    /// Annual recurring revenue.
    #[serde(default)]
    pub arr: u64,
    /// RFC 3339.
    #[serde(default)]
    pub contract_start: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub renewal_date: Option<String>,
    /// Custom attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn parse_tier(value: &str) -> Result<Tier, ApiError> {
    match value {
        "enterprise" => Ok(Tier::Enterprise),
        "mid-market" => Ok(Tier::MidMarket),
        "small-business" => Ok(Tier::SmallBusiness),
        other => Err(ApiError::invalid(
            "tier",
            format!("`{other}` is not a tier; expected enterprise, mid-market or small-business"),
        )),
    }
}

fn parse_industry(value: &str) -> Result<Industry, ApiError> {
    Ok(match value {
        "healthcare" => Industry::Healthcare,
        "financial-services" => Industry::FinancialServices,
        "e-commerce" => Industry::ECommerce,
        "technology" => Industry::Technology,
        "manufacturing" => Industry::Manufacturing,
        "education" => Industry::Education,
        "other" => Industry::Other,
        other => {
            return Err(ApiError::invalid(
                "industry",
                format!(
                    "`{other}` is not an industry; expected healthcare, financial-services, e-commerce, technology, manufacturing, education or other"
                ),
            ));
        }
    })
}

fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| ApiError::invalid(field, format!("`{value}` is not an RFC 3339 time: {e}")))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::invalid(field, format!("`{value}` is out of range")))
}

fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "`{value}` is not a valid identifier: 1–128 letters, digits, `-`, `_`, `.` or `:`"
            ),
        ))
    }
}

async fn put_customer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomerBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id("id", &id)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "must not be empty".into()));
    }
    let account = Account {
        id: id.clone(),
        name: body.name.clone(),
        tier: parse_tier(&body.tier)?,
        industry: parse_industry(&body.industry)?,
        licensed_seats: body.licensed_seats,
        active_users: body.active_users,
        arr: body.arr,
        contract_start: body
            .contract_start
            .as_deref()
            .map(|t| parse_time("contract_start", t))
            .transpose()?,
        renewal_date: body
            .renewal_date
            .as_deref()
            .map(|t| parse_time("renewal_date", t))
            .transpose()?,
        attributes: body
            .attributes
            .iter()
            .map(|(key, value)| Attribute {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    let audit = AuditEntry {
        at: now_ms(),
        actor: "api".into(),
        action: "account.upsert".into(),
        resource: format!("account:{id}"),
        origin: "http".into(),
        success: true,
        details: json!({"tier": body.tier, "industry": body.industry}),
    };
    state.store.upsert_account(&account, audit).await?;
    // The in-memory state follows the profile as sent; later events that
    // carry `active_users` update it again.
    if let Some(cached) = state.accounts.lock().await.get_mut(&id) {
        cached.account = account;
    }
    Ok(Json(json!({"id": id, "status": "stored"})))
}

/// One event as posted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The event's id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The account it belongs to (must exist).
    pub account_id: String,
    /// Dotted kind, for example `usage.daily`.
    pub kind: String,
    /// RFC 3339.
    pub occurred_at: String,
    /// A JSON object.
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
    /// Seen again with the same body, the first answer is returned; with
    /// another body, 409.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn empty_object() -> serde_json::Value {
    json!({})
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
    let canonical = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = match &body.id {
        Some(id) => {
            check_id(&at("id"), id)?;
            id.clone()
        }
        None => {
            let n = state.next_id.fetch_add(1, Ordering::Relaxed);
            let seed = format!("{canonical}\u{0}{}\u{0}{n}", now_ms());
            format!(
                "evt-{}",
                &hex::encode(Sha256::digest(seed.as_bytes()))[..24]
            )
        }
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
    })
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // One event or an array of them; each decoded on its own so an error
    // names the event's index and the field.
    let decode = |index: usize, value: serde_json::Value| {
        serde_json::from_value::<EventBody>(value)
            .map_err(|e| ApiError::invalid(&format!("[{index}]"), e.to_string()))
    };
    let bodies = match body {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| decode(index, item))
            .collect::<Result<Vec<_>, _>>()?,
        single => vec![decode(0, single)?],
    };
    if bodies.is_empty() {
        return Err(ApiError::invalid("events", "the batch is empty".into()));
    }
    if bodies.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("{} events; at most {MAX_BATCH} per request", bodies.len()),
        ));
    }
    let events = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| validate_event(i, body, &state))
        .collect::<Result<Vec<_>, _>>()?;
    let mut profiles = HashMap::new();
    for account_id in events
        .iter()
        .map(|e| &e.event.account_id)
        .collect::<BTreeSet<_>>()
    {
        let profile = state.store.account(account_id).await?.ok_or_else(|| {
            ApiError::UnknownAccount(format!(
                "account `{account_id}` is unknown; create it with PUT /api/v1/customers/{account_id}"
            ))
        })?;
        profiles.insert(account_id.clone(), profile);
    }

    // Acknowledged only after commit: events and their audit entries.
    let stored = state
        .store
        .insert_events(&events, |new| AuditEntry {
            at: now_ms(),
            actor: "api".into(),
            action: "event.ingest".into(),
            resource: format!("event:{}", new.event.id),
            origin: "http".into(),
            success: true,
            details: json!({"account_id": new.event.account_id, "kind": new.event.kind}),
        })
        .await?;

    let mut results = Vec::with_capacity(events.len());
    let mut accounts = state.accounts.lock().await;
    for (new, outcome) in events.iter().zip(&stored) {
        match outcome {
            Stored::Duplicate { first_event } => {
                results.push(json!({"id": first_event, "status": "duplicate"}));
            }
            Stored::New { seq } => {
                let account_id = &new.event.account_id;
                if !accounts.contains_key(account_id) {
                    let rebuilt = rebuild(
                        &state.store,
                        profiles.get(account_id),
                        account_id,
                        &new.event.id,
                    )
                    .await?;
                    accounts.insert(account_id.clone(), rebuilt);
                }
                let Some(account) = accounts.get_mut(account_id) else {
                    return Err(ApiError::Internal("account state vanished".into()));
                };
                let evaluation = state
                    .pipeline
                    .process(account, &new.event)
                    .map_err(|e| ApiError::invalid("payload", e.to_string()))?;
                for score in &evaluation.scores {
                    state.store.record_score(account_id, score).await?;
                }
                results.push(json!({
                    "id": new.event.id,
                    "status": "stored",
                    "seq": seq,
                    "signals": evaluation.signals.len(),
                    "intents": evaluation.intents.len(),
                }));
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"events": results}))))
}

/// Rebuilds an account's state from its stored profile and events (what
/// they record into the account; plugins are not run again), leaving out
/// `skip`, the event about to be processed.
async fn rebuild(
    store: &Store,
    profile: Option<&Account>,
    account_id: &str,
    skip: &str,
) -> Result<AccountState, ApiError> {
    let profile = match profile {
        Some(profile) => profile.clone(),
        None => store.account(account_id).await?.ok_or_else(|| {
            ApiError::UnknownAccount(format!("account `{account_id}` is unknown"))
        })?,
    };
    let mut state = AccountState::new(profile);
    for event in store.events_for(account_id).await? {
        if event.id == skip {
            continue;
        }
        if let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload) {
            state.record_event(&event.kind, event.occurred_at, &payload);
        }
    }
    Ok(state)
}

async fn health_score(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id("id", &id)?;
    if state.store.account(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("account `{id}` is unknown")));
    }
    let score = state
        .store
        .latest_score(&id, "health")
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "account `{id}` has no health score yet: post an event for it"
            ))
        })?;
    let history = state
        .store
        .score_history(&id, "health", score.computed_at - 91 * DAY_MS)
        .await?;
    let trend = |days: i64| {
        history
            .iter()
            .rev()
            .find(|(at, _)| *at <= score.computed_at - days * DAY_MS)
            .map(|(_, value)| score.card.value - value)
    };
    let factors: Vec<_> = score
        .card
        .factors
        .iter()
        .map(|f| json!({"name": f.name, "weight": f.weight, "value": f.value, "contribution": f.contribution, "note": f.note}))
        .collect();
    Ok(Json(json!({
        "account_id": id,
        "value": score.card.value,
        "band": score.card.band,
        "rag": format!("{:?}", score.card.rag).to_lowercase(),
        "factors": factors,
        "trend": {"d7": trend(7), "d30": trend(30), "d90": trend(90)},
        "computed_at": format_time(score.computed_at),
        "plugin": score.plugin,
        "stale": score.stale,
    })))
}
