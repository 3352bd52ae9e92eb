//! Admin endpoints: the audit log and API keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, AppState, Caller, Problem, format_time, page_limit};
use crate::store::{AuditEntry, Role, now_ms};

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// The `next_cursor` of the previous page (a sequence number).
    cursor: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    // `MAX_PAGE`: the attribute takes a literal; a test checks they agree.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One entry of the audit chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    /// Its position, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub at: String,
    /// Who: `key:<id>`, `plugin:<name>@<version>`, `host`, `cli`.
    pub actor: String,
    /// What: `event.ingest`, `intent.planned`, `plugin.trap`, …
    pub action: String,
    /// The resource affected: `account:acme`, `event:e-1`, …
    pub resource: String,
    /// Where it came from: `http:ADDR`, `event:ID`, `dispatcher`, `cli`.
    pub origin: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Anything else.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// SHA-256 over the previous hash and this entry's fields.
    pub hash: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries, in order.
    pub entries: Vec<AuditItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

/// The audit chain, a page at a time (admin). Reading it is itself
/// recorded in it (`audit.read`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 403, description = "The key is not an admin key", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Role::Admin)?;
    let limit = page_limit(query.limit, 100)?;
    let after = query.cursor.unwrap_or(0).max(0);
    // Recorded before the read, so the read is on the record even when the
    // answer never reaches the caller.
    state
        .store
        .audit(AuditEntry {
            at: now_ms(),
            actor: caller.actor(),
            action: "audit.read".into(),
            resource: "audit".into(),
            origin: caller.origin.clone(),
            success: true,
            details: json!({"after": after, "limit": limit}),
        })
        .await?;
    let records = state.store.audit_page(after, limit + 1).await?;
    let more = records.len() as i64 > limit;
    let entries: Vec<AuditItem> = records
        .into_iter()
        .take(limit as usize)
        .map(|r| AuditItem {
            seq: r.seq,
            at: format_time(r.entry.at),
            actor: r.entry.actor,
            action: r.entry.action,
            resource: r.entry.resource,
            origin: r.entry.origin,
            success: r.entry.success,
            details: r.entry.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect();
    let next_cursor = more.then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// What the key is for, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub label: String,
}

/// A new key. The key itself is shown this once; only its hash is stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The key's public id.
    pub id: String,
    /// Its role.
    pub role: String,
    /// The key, for `Authorization: Bearer KEY`.
    pub key: String,
    /// When it was created (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Create an API key (admin).
#[utoipa::path(post, path = "/api/v1/keys", tag = "admin", security(("bearer" = [])),
    request_body = KeyBody,
    responses(
        (status = 201, description = "Created", body = KeyCreated),
        (status = 403, description = "The key is not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<KeyBody>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    caller.require(Role::Admin)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!(
                "`{}` is not a role; expected viewer, operator or admin",
                body.role
            ),
        )
    })?;
    if body.label.chars().count() > 200 {
        return Err(ApiError::invalid("label", "at most 200 characters".into()));
    }
    let (key, record) = state
        .store
        .create_api_key(role, &body.label, &caller.actor(), &caller.origin)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            id: record.id,
            role: role.as_str().into(),
            key,
            created_at: format_time(record.created_at),
        }),
    ))
}
