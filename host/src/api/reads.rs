//! Lists across accounts: the latest scores and the actions (the outbox).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiQuery, AppState, Caller, Problem, check_id, format_time, page_limit};
use crate::names::{parse_industry, parse_tier};
use crate::store::{IntentFilter, IntentRecord, IntentState, Role, ScoreFilter};

/// The score bands a filter may name.
pub(super) const BANDS: &[&str] = &[
    "critical",
    "declining",
    "stable",
    "optimal",
    "hot",
    "warm",
    "cold",
];

/// Filters and paging of the score list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoresQuery {
    /// The score (default `health`).
    name: Option<String>,
    /// Only this band: `critical`, `declining`, `stable` or `optimal` for
    /// health; `hot`, `warm` or `cold` for lead.
    band: Option<String>,
    /// Only this tier: `enterprise`, `mid-market` or `small-business`.
    tier: Option<String>,
    /// Only this industry: `healthcare`, `financial-services`, `e-commerce`,
    /// `technology`, `manufacturing`, `education` or `other`.
    industry: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    // `MAX_PAGE`: the attribute takes a literal; a test checks they agree.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One account's latest score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreItem {
    /// The account.
    pub account_id: String,
    /// The score's name.
    pub name: String,
    /// 0 to 100.
    pub value: f64,
    /// Its band.
    pub band: String,
    /// The account's tier.
    pub tier: String,
    /// The account's industry.
    pub industry: String,
    /// When it was computed (RFC 3339).
    #[schema(format = DateTime)]
    pub computed_at: String,
    /// Whether its scorer failed since.
    pub stale: bool,
}

/// A page of scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScorePage {
    /// The scores, by account id.
    pub scores: Vec<ScoreItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The latest score of every account, filtered by band, tier and industry,
/// a page at a time (viewer).
#[utoipa::path(get, path = "/api/v1/scores", tag = "scores", security(("bearer" = [])),
    params(ScoresQuery),
    responses(
        (status = 200, description = "A page of scores", body = ScorePage),
        (status = 422, description = "A filter has a value the API cannot take", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_scores(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ScoresQuery>,
) -> Result<Json<ScorePage>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = page_limit(query.limit, 100)?;
    let name = query.name.unwrap_or_else(|| "health".into());
    check_id("name", &name)?;
    if let Some(band) = &query.band
        && !BANDS.contains(&band.as_str())
    {
        return Err(ApiError::invalid(
            "band",
            format!(
                "`{band}` is not a band; expected one of {}",
                BANDS.join(", ")
            ),
        ));
    }
    if let Some(tier) = &query.tier
        && parse_tier(tier).is_none()
    {
        return Err(ApiError::invalid(
            "tier",
            format!("`{tier}` is not a tier; expected enterprise, mid-market or small-business"),
        ));
    }
    if let Some(industry) = &query.industry
        && parse_industry(industry).is_none()
    {
        return Err(ApiError::invalid(
            "industry",
            format!("`{industry}` is not an industry"),
        ));
    }
    if let Some(cursor) = &query.cursor {
        check_id("cursor", cursor)?;
    }
    let filter = ScoreFilter {
        name,
        band: query.band,
        tier: query.tier,
        industry: query.industry,
    };
    let rows = state
        .store
        .latest_scores(&filter, query.cursor.as_deref(), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let scores: Vec<ScoreItem> = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| ScoreItem {
            account_id: row.account_id,
            name: row.name,
            value: row.value,
            band: row.band,
            tier: row.tier,
            industry: row.industry,
            computed_at: format_time(row.computed_at),
            stale: row.stale,
        })
        .collect();
    let next_cursor = more
        .then(|| scores.last().map(|s| s.account_id.clone()))
        .flatten();
    Ok(Json(ScorePage {
        scores,
        next_cursor,
    }))
}

/// An intent in the outbox and its delivery state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Action {
    /// Its position in the outbox (the list's cursor).
    pub seq: i64,
    /// `account/plugin/idempotency-key`, unique.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// The event whose evaluation planned it (null for an intervention).
    pub event_id: Option<String>,
    /// `plugin:name@version`, or `key:<id>` for an intervention.
    pub source: String,
    /// The signal it answers (or `intervention`).
    pub signal: String,
    /// `notify`, `task`, `escalate`, `schedule`, `webhook` or `freeze`.
    pub kind: String,
    /// `immediate`, `short-term`, `medium-term` or `long-term`.
    pub timing: String,
    /// The intent's fields (recipient, due time, level, …).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Delivery attempts.
    pub attempts: i32,
    /// When it was planned (RFC 3339).
    #[schema(format = DateTime)]
    pub planned_at: String,
    /// When it was delivered (RFC 3339).
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// Why delivery failed.
    pub error: Option<String>,
}

impl From<IntentRecord> for Action {
    fn from(record: IntentRecord) -> Self {
        Action {
            seq: record.seq,
            id: record.intent.id,
            account_id: record.intent.account_id,
            event_id: record.intent.event_id,
            source: record.intent.source,
            signal: record.intent.signal,
            kind: record.intent.kind,
            timing: record.intent.timing,
            details: record.intent.body,
            state: record.state.as_str().into(),
            attempts: record.attempts,
            planned_at: format_time(record.intent.planned_at),
            delivered_at: record.delivered_at.map(format_time),
            error: record.last_error,
        }
    }
}

/// Filters and paging of the action list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionsQuery {
    /// Only this account's.
    account_id: Option<String>,
    /// Only `pending`, `delivered` or `failed` ones.
    state: Option<String>,
    /// Only this kind: `notify`, `task`, `escalate`, `schedule`, `webhook`
    /// or `freeze`.
    kind: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    // `MAX_PAGE`: the attribute takes a literal; a test checks they agree.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A page of actions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionPage {
    /// The actions, oldest first.
    pub actions: Vec<Action>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

/// The intent kinds an action filter may name.
pub(super) const KINDS: &[&str] = &[
    "notify", "task", "escalate", "schedule", "webhook", "freeze",
];

/// The intents planned by plugins and requested as interventions, with
/// their delivery state, oldest first (viewer).
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", security(("bearer" = [])),
    params(ActionsQuery),
    responses(
        (status = 200, description = "A page of actions", body = ActionPage),
        (status = 422, description = "A filter has a value the API cannot take", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_actions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ActionsQuery>,
) -> Result<Json<ActionPage>, ApiError> {
    caller.require(Role::Viewer)?;
    let limit = page_limit(query.limit, 100)?;
    if let Some(account) = &query.account_id {
        check_id("account_id", account)?;
    }
    let delivery = query
        .state
        .as_deref()
        .map(|s| {
            IntentState::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!("`{s}` is not a state; expected pending, delivered or failed"),
                )
            })
        })
        .transpose()?;
    if let Some(kind) = &query.kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(ApiError::invalid(
            "kind",
            format!(
                "`{kind}` is not a kind; expected one of {}",
                KINDS.join(", ")
            ),
        ));
    }
    let filter = IntentFilter {
        account_id: query.account_id,
        state: delivery,
        kind: query.kind,
    };
    let records = state
        .store
        .intents(&filter, query.cursor.unwrap_or(0), limit + 1)
        .await?;
    let more = records.len() as i64 > limit;
    let actions: Vec<Action> = records
        .into_iter()
        .take(limit as usize)
        .map(Action::from)
        .collect();
    let next_cursor = more.then(|| actions.last().map(|a| a.seq)).flatten();
    Ok(Json(ActionPage {
        actions,
        next_cursor,
    }))
}
