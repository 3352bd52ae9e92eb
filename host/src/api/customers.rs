//! `/api/v1/customers/{id}`: the profile, the health score, usage metrics,
//! the success plan and interventions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::reads::Action;
use super::{
    ApiError, ApiJson, ApiQuery, AppState, Caller, Problem, check_id, format_time, parse_time,
};
use crate::history::DAY_MS;
use crate::names::{
    industry_name, parse_channel, parse_industry, parse_level, parse_tier, parse_timing, rag_name,
    tier_name, timing_name,
};
use crate::runtime::bindings::types::{
    Account, Attribute, Escalate, IntentKind, Notify, Schedule, Task, Timing,
};
use crate::service::{intent_body, rebuild};
use crate::store::{AuditEntry, NewIntent, Role, now_ms};

/// An account profile as the API takes and gives it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Display name (not all white space).
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    /// `enterprise`, `mid-market` or `small-business`.
    #[schema(example = "enterprise")]
    pub tier: String,
    /// `healthcare`, `financial-services`, `e-commerce`, `technology`,
    /// `manufacturing`, `education` or `other`.
    #[schema(example = "healthcare")]
    pub industry: String,
    /// Seats paid for.
    // As an int64 with u32's range: derived, it would be an int32, whose
    // range stops at half of what the API takes.
    #[serde(deserialize_with = "whole_number")]
    #[schema(value_type = u64, maximum = 4_294_967_295_u64)]
    pub licensed_seats: u32,
    /// Users active in the last 30 days.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = u64, maximum = 4_294_967_295_u64)]
    pub active_users: u32,
    /// Annual recurring revenue, at most 2^63 − 1.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub arr: u64,
    /// RFC 3339.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub contract_start: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub renewal_date: Option<String>,
    /// Custom attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A count as JSON Schema's `integer` takes it: a whole number, written
/// with or without a zero fraction (`68299` or `68299.0`, as a client that
/// holds numbers as floats sends it), in the field's range.
fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            // Below 2^64 (`u64::MAX as f64` is 2^64 itself): every whole
            // f64 in that range is a u64, so the cast is exact.
            .filter(|f| f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(f))
            .map(|f| f as u64)
    });
    whole.and_then(|w| T::try_from(w).ok()).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{number}` is not a whole number from 0 to the field's largest"
        ))
    })
}

/// A stored account profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    /// The account's id.
    pub id: String,
    /// The profile.
    #[serde(flatten)]
    pub profile: CustomerBody,
}

fn customer_of(account: &Account) -> Customer {
    Customer {
        id: account.id.clone(),
        profile: CustomerBody {
            name: account.name.clone(),
            tier: tier_name(account.tier).into(),
            industry: industry_name(account.industry).into(),
            licensed_seats: account.licensed_seats,
            active_users: account.active_users,
            arr: account.arr,
            contract_start: account.contract_start.map(format_time),
            renewal_date: account.renewal_date.map(format_time),
            attributes: account
                .attributes
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect(),
        },
    }
}

async fn known_account(state: &AppState, id: &str) -> Result<Account, ApiError> {
    check_id("id", id)?;
    state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account `{id}` is unknown")))
}

/// Create or replace a customer's profile (operator).
#[utoipa::path(put, path = "/api/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id: 1–128 letters, digits, `-`, `_`, `.`, `:`")),
    request_body = CustomerBody,
    responses(
        (status = 200, description = "Stored", body = Customer),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field has a value the API cannot take", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn put_customer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomerBody>,
) -> Result<Json<Customer>, ApiError> {
    caller.require(Role::Operator)?;
    check_id("id", &id)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "must not be empty".into()));
    }
    // A signed 64-bit integer, as the document says and as most clients
    // hold it.
    if i64::try_from(body.arr).is_err() {
        return Err(ApiError::invalid(
            "arr",
            format!(
                "{} is over the largest the API takes, {}",
                body.arr,
                i64::MAX
            ),
        ));
    }
    let account = Account {
        id: id.clone(),
        name: body.name.clone(),
        tier: parse_tier(&body.tier).ok_or_else(|| {
            ApiError::invalid(
                "tier",
                format!(
                    "`{}` is not a tier; expected enterprise, mid-market or small-business",
                    body.tier
                ),
            )
        })?,
        industry: parse_industry(&body.industry).ok_or_else(|| {
            ApiError::invalid(
                "industry",
                format!(
                    "`{}` is not an industry; expected healthcare, financial-services, e-commerce, technology, manufacturing, education or other",
                    body.industry
                ),
            )
        })?,
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
        actor: caller.actor(),
        action: "account.upsert".into(),
        resource: format!("account:{id}"),
        origin: caller.origin.clone(),
        success: true,
        details: json!({"tier": body.tier, "industry": body.industry}),
    };
    state.store.upsert_account(&account, audit).await?;
    // The next evaluation rebuilds the state from the stored profile.
    state.service.forget(&id).await;
    Ok(Json(customer_of(&account)))
}

/// A customer's profile (viewer).
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "The profile", body = Customer),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_customer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(customer_of(&known_account(&state, &id).await?)))
}

/// One factor of a score.
#[derive(Debug, Serialize, ToSchema)]
pub struct Factor {
    /// The factor's name.
    pub name: String,
    /// Its weight, 0 to 1.
    pub weight: f64,
    /// Its raw value.
    pub value: f64,
    /// What it adds to the score.
    pub contribution: f64,
    /// How the plugin read it.
    pub note: String,
}

/// Change of the score in points over 7, 30 and 90 days; null when there
/// was no score that long ago.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    /// Against the newest score at least 7 days older.
    pub d7: Option<f64>,
    /// Against the newest score at least 30 days older.
    pub d30: Option<f64>,
    /// Against the newest score at least 90 days older.
    pub d90: Option<f64>,
}

/// The plugin that computed a score.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its component.
    pub digest: String,
}

/// A customer's health score with its factors and trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthScore {
    /// The account.
    pub account_id: String,
    /// 0 to 100.
    pub value: f64,
    /// `critical` (<30), `declining` (30–49), `stable` (50–70), `optimal` (>70).
    pub band: String,
    /// `red`, `yellow` or `green`.
    pub rag: String,
    /// The weighted factors; their contributions add up to the value.
    pub factors: Vec<Factor>,
    /// Change over 7, 30 and 90 days.
    pub trend: Trend,
    /// When it was computed: the evaluation time (RFC 3339).
    #[schema(format = DateTime)]
    pub computed_at: String,
    /// The scorer.
    pub plugin: PluginInfo,
    /// Whether the scorer failed since, so this is the last good score.
    pub stale: bool,
}

/// A customer's health score (viewer).
#[utoipa::path(get, path = "/api/v1/customers/{id}/health-score", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "The latest health score", body = HealthScore),
        (status = 404, description = "No such account, or no score yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn health_score(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HealthScore>, ApiError> {
    caller.require(Role::Viewer)?;
    check_id("id", &id)?;
    let ages = [7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS];
    let (read, from) = state
        .service
        .scores()
        .latest_score_with_trend(&state.store, &id, "health", ages)
        .await?;
    state.metrics.score_read(from.name());
    let Some((score, [d7, d30, d90])) = read else {
        known_account(&state, &id).await?;
        return Err(ApiError::NotFound(format!(
            "account `{id}` has no health score yet: post an event for it"
        )));
    };
    Ok(Json(HealthScore {
        account_id: id,
        value: score.card.value,
        band: score.card.band.to_string(),
        rag: rag_name(score.card.rag).into(),
        factors: score
            .card
            .factors
            .iter()
            .map(|f| Factor {
                name: f.name.to_string(),
                weight: f.weight,
                value: f.value,
                contribution: f.contribution,
                note: f.note.to_string(),
            })
            .collect(),
        trend: Trend { d7, d30, d90 },
        computed_at: format_time(score.computed_at),
        plugin: PluginInfo {
            name: score.plugin.name.to_string(),
            version: score.plugin.version.to_string(),
            digest: score.plugin.digest.to_string(),
        },
        stale: score.stale,
    }))
}

/// `as_of` for usage metrics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageQuery {
    /// The end of the windows (RFC 3339); default: the account's newest
    /// event, the time its plugins last evaluated at.
    #[param(format = DateTime)]
    at: Option<String>,
}

/// One metric over one window.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    /// Samples.
    pub count: u32,
    /// Their sum.
    pub sum: f64,
    /// Their mean (null when empty).
    pub mean: Option<f64>,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The latest.
    pub last: f64,
}

/// One metric over the last 7, 30 and 90 days.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricWindows {
    /// The last 7 days.
    pub d7: Window,
    /// The last 30 days.
    pub d30: Window,
    /// The last 90 days.
    pub d90: Window,
}

/// A customer's usage: seats, and every metric its events carried.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageMetrics {
    /// The account.
    pub account_id: String,
    /// The end of the windows (RFC 3339), null when the account has no
    /// events.
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    /// Seats paid for.
    pub licensed_seats: u32,
    /// Users active (the latest `active_users` reported).
    pub active_users: u32,
    /// Active users per licensed seat, 0 to 1 (null without seats).
    pub seat_usage: Option<f64>,
    /// Per metric (`logins`, `active-users`, event kinds, scores).
    pub metrics: BTreeMap<String, MetricWindows>,
}

/// A customer's usage metrics over 7, 30 and 90 days (viewer).
#[utoipa::path(get, path = "/api/v1/customers/{id}/usage-metrics", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id"), UsageQuery),
    responses(
        (status = 200, description = "The account's usage", body = UsageMetrics),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn usage_metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageMetrics>, ApiError> {
    caller.require(Role::Viewer)?;
    known_account(&state, &id).await?;
    let at = query
        .at
        .as_deref()
        .map(|t| parse_time("at", t))
        .transpose()?;
    // This host's evaluator has the state when it evaluates the account;
    // otherwise it is rebuilt from what is evaluated in the store.
    let account_state = match state.service.account_state(&id).await {
        Some(s) => s,
        None => rebuild(&state.store, &id).await?,
    };
    let history = &account_state.history;
    let as_of = at.or_else(|| history.newest_sample());
    let metrics = match as_of {
        None => BTreeMap::new(),
        Some(end) => history
            .metric_names()
            .map(|name| {
                let window = |days| {
                    let w = history.window(name, end, days, 0);
                    Window {
                        count: w.count,
                        sum: w.sum,
                        mean: (w.count > 0).then(|| w.sum / f64::from(w.count)),
                        min: w.min,
                        max: w.max,
                        last: w.last,
                    }
                };
                (
                    name.to_string(),
                    MetricWindows {
                        d7: window(7),
                        d30: window(30),
                        d90: window(90),
                    },
                )
            })
            .collect(),
    };
    let account = &account_state.account;
    Ok(Json(UsageMetrics {
        account_id: id,
        as_of: as_of.map(format_time),
        licensed_seats: account.licensed_seats,
        active_users: account.active_users,
        seat_usage: (account.licensed_seats > 0)
            .then(|| f64::from(account.active_users) / f64::from(account.licensed_seats)),
        metrics,
    }))
}

/// One objective of a success plan.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// What the customer wants to achieve (not all white space).
    #[schema(min_length = 1, pattern = "\\S")]
    pub title: String,
    /// The metric that measures it, for example `active-users`.
    #[serde(default)]
    pub metric: Option<String>,
    /// The metric's target.
    #[serde(default)]
    pub target: Option<f64>,
    /// When (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub due_date: Option<String>,
    /// `planned`, `in-progress`, `achieved` or `at-risk`.
    #[serde(default = "planned")]
    pub status: String,
}

fn planned() -> String {
    "planned".into()
}

/// A customer's success plan.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessPlanBody {
    /// The objectives (1 to 50).
    #[schema(min_items = 1, max_items = 50)]
    pub objectives: Vec<Objective>,
    /// Who owns the plan on the vendor side (a role or a person).
    #[serde(default)]
    pub owner: Option<String>,
    /// When the plan is next reviewed (RFC 3339).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub review_date: Option<String>,
    /// Free notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A stored success plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessPlan {
    /// The account.
    pub account_id: String,
    /// The plan.
    pub plan: SuccessPlanBody,
    /// 1 for the first plan, one more per replacement.
    pub version: i64,
    /// When it was last replaced (RFC 3339).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Who replaced it (`key:<id>`).
    pub updated_by: String,
}

/// The states an objective of a success plan can be in.
pub(super) const OBJECTIVE_STATES: &[&str] = &["planned", "in-progress", "achieved", "at-risk"];

/// The interventions a person can ask for (`InterventionBody::action`).
pub(super) const INTERVENTIONS: &[&str] = &["notify", "task", "escalate", "schedule"];

fn stored_plan(stored: crate::store::SuccessPlan) -> Result<SuccessPlan, ApiError> {
    Ok(SuccessPlan {
        account_id: stored.account_id,
        plan: serde_json::from_value(stored.plan)
            .map_err(|e| ApiError::Internal(format!("stored success plan: {e}")))?,
        version: stored.version,
        updated_at: format_time(stored.updated_at),
        updated_by: stored.updated_by,
    })
}

/// Create or replace a customer's success plan (operator).
#[utoipa::path(put, path = "/api/v1/customers/{id}/success-plan", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id")),
    request_body = SuccessPlanBody,
    responses(
        (status = 200, description = "Stored; `version` counts replacements", body = SuccessPlan),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field has a value the API cannot take", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn put_success_plan(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SuccessPlanBody>,
) -> Result<Json<SuccessPlan>, ApiError> {
    caller.require(Role::Operator)?;
    known_account(&state, &id).await?;
    if body.objectives.is_empty() || body.objectives.len() > 50 {
        return Err(ApiError::invalid(
            "objectives",
            format!("{} objectives; 1 to 50 are allowed", body.objectives.len()),
        ));
    }
    for (i, objective) in body.objectives.iter().enumerate() {
        if objective.title.trim().is_empty() {
            return Err(ApiError::invalid(
                &format!("objectives[{i}].title"),
                "must not be empty".into(),
            ));
        }
        if let Some(due) = &objective.due_date {
            parse_time(&format!("objectives[{i}].due_date"), due)?;
        }
        if !OBJECTIVE_STATES.contains(&objective.status.as_str()) {
            return Err(ApiError::invalid(
                &format!("objectives[{i}].status"),
                format!(
                    "`{}` is not a status; expected planned, in-progress, achieved or at-risk",
                    objective.status
                ),
            ));
        }
    }
    if let Some(review) = &body.review_date {
        parse_time("review_date", review)?;
    }
    let plan = serde_json::to_value(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let audit = AuditEntry {
        at: now_ms(),
        actor: caller.actor(),
        action: "success-plan.put".into(),
        resource: format!("account:{id}"),
        origin: caller.origin.clone(),
        success: true,
        details: json!({"objectives": body.objectives.len()}),
    };
    let stored = state.store.put_success_plan(&id, &plan, audit).await?;
    Ok(Json(stored_plan(stored)?))
}

/// A customer's success plan (viewer).
#[utoipa::path(get, path = "/api/v1/customers/{id}/success-plan", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id")),
    responses(
        (status = 200, description = "The plan", body = SuccessPlan),
        (status = 404, description = "No such account, or no plan", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_success_plan(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SuccessPlan>, ApiError> {
    caller.require(Role::Viewer)?;
    known_account(&state, &id).await?;
    let stored = state
        .store
        .success_plan(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account `{id}` has no success plan")))?;
    Ok(Json(stored_plan(stored)?))
}

/// An intervention a person asks the host to carry out for a customer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterventionBody {
    /// `notify`, `task`, `escalate` or `schedule`.
    #[schema(example = "escalate")]
    pub action: String,
    /// Why: the message, the task's title, the escalation's reason, or
    /// what to schedule; 1 to 2,000 characters, not all white space.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub reason: String,
    /// `immediate` (default), `short-term`, `medium-term` or `long-term`.
    #[serde(default)]
    pub timing: Option<String>,
    /// Escalation level for `escalate`: `l1`, `l2` or `l3`.
    #[serde(default)]
    pub level: Option<String>,
    /// Who: the task's assignee or the notification's recipient (a role:
    /// `csm`, `account-owner`, `executive-sponsor`, …); default `csm`.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Channel for `notify`: `email` (default), `chat`, `sms` or `in-app`.
    #[serde(default)]
    pub channel: Option<String>,
    /// When it is due (task, escalate) or happens (schedule), RFC 3339;
    /// default: the end of the timing bucket.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// Posting the same key again answers with the first intervention.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The latest a timing bucket allows.
fn bucket_end(timing: Timing) -> i64 {
    match timing {
        Timing::Immediate => 3_600_000,
        Timing::ShortTerm => DAY_MS,
        Timing::MediumTerm => 7 * DAY_MS,
        Timing::LongTerm => 28 * DAY_MS,
    }
}

/// Ask the host to carry out an intervention for a customer (operator).
/// It goes into the outbox like a plugin's intent and is listed by
/// `GET /api/v1/actions`.
#[utoipa::path(post, path = "/api/v1/customers/{id}/intervention", tag = "customers", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account id")),
    request_body = InterventionBody,
    responses(
        (status = 201, description = "Stored in the outbox", body = Action),
        (status = 200, description = "The same idempotency key was posted before: the first intervention", body = Action),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The idempotency key was posted before with another body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field has a value the API cannot take", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn post_intervention(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InterventionBody>,
) -> Result<(StatusCode, Json<Action>), ApiError> {
    caller.require(Role::Operator)?;
    known_account(&state, &id).await?;
    if body.reason.trim().is_empty() || body.reason.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "reason",
            "must be 1 to 2000 characters".into(),
        ));
    }
    let timing = match &body.timing {
        None => Timing::Immediate,
        Some(name) => parse_timing(name).ok_or_else(|| {
            ApiError::invalid(
                "timing",
                format!("`{name}` is not a timing; expected immediate, short-term, medium-term or long-term"),
            )
        })?,
    };
    let now = now_ms();
    let due_at = match &body.due_at {
        Some(t) => parse_time("due_at", t)?,
        None => now + bucket_end(timing),
    };
    let request_due = body.due_at.clone();
    let who = body.assignee.clone().unwrap_or_else(|| "csm".into());
    let kind = match body.action.as_str() {
        "notify" => IntentKind::Notify(Notify {
            channel: match &body.channel {
                None => crate::runtime::bindings::types::Channel::Email,
                Some(name) => parse_channel(name).ok_or_else(|| {
                    ApiError::invalid(
                        "channel",
                        format!("`{name}` is not a channel; expected email, chat, sms or in-app"),
                    )
                })?,
            },
            recipient: who,
            template: "intervention".into(),
            summary: body.reason.clone(),
        }),
        "task" => IntentKind::Task(Task {
            title: body.reason.clone(),
            assignee: who,
            due_at,
        }),
        "escalate" => IntentKind::Escalate(Escalate {
            level: body.level.as_deref().and_then(parse_level).ok_or_else(|| {
                ApiError::invalid("level", "an escalation needs `level`: l1, l2 or l3".into())
            })?,
            reason: body.reason.clone(),
            due_at,
        }),
        "schedule" => IntentKind::Schedule(Schedule {
            what: body.reason.clone(),
            at: due_at,
        }),
        other => {
            return Err(ApiError::invalid(
                "action",
                format!(
                    "`{other}` is not an intervention; expected notify, task, escalate or schedule"
                ),
            ));
        }
    };
    if body.level.is_some() && body.action != "escalate" {
        return Err(ApiError::invalid(
            "level",
            "only an escalation takes a level".into(),
        ));
    }
    let key = match &body.idempotency_key {
        Some(key) => {
            check_id("idempotency_key", key)?;
            key.clone()
        }
        None => state.ids.next(),
    };
    let intent = NewIntent {
        id: format!("{id}/api/{key}"),
        account_id: id.clone(),
        event_id: None,
        source: caller.actor(),
        plugin_digest: None,
        signal: "intervention".into(),
        kind: body.action.clone(),
        timing: timing_name(timing).into(),
        body: intent_body(&kind),
        planned_at: now,
    };
    let audit = AuditEntry {
        at: now,
        actor: caller.actor(),
        action: "intervention.create".into(),
        resource: format!("intent:{}", intent.id),
        origin: caller.origin.clone(),
        success: true,
        details: json!({"account_id": id, "kind": body.action, "timing": intent.timing}),
    };
    let created = state.store.insert_intent(&intent, audit).await?;
    let stored = state
        .store
        .intent_by_id(&intent.id)
        .await?
        .ok_or_else(|| ApiError::Internal("the intervention vanished".into()))?;
    if created {
        state.service.deliver_now();
        return Ok((StatusCode::CREATED, Json(Action::from(stored))));
    }
    // A default due time moves with the clock; compare the rest.
    let comparable = |body: &serde_json::Value| {
        let mut body = body.clone();
        if request_due.is_none()
            && let Some(fields) = body.as_object_mut()
        {
            fields.remove("due_at");
            fields.remove("at");
        }
        body
    };
    if comparable(&stored.intent.body) != comparable(&intent.body)
        || stored.intent.kind != intent.kind
        || stored.intent.timing != intent.timing
    {
        return Err(ApiError::Conflict(format!(
            "idempotency key `{key}` was already used for another intervention"
        )));
    }
    let status = StatusCode::OK;
    Ok((status, Json(Action::from(stored))))
}
