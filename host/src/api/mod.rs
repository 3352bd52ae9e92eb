//! The HTTP API (axum, JSON). Every error is `application/problem+json`
//! with a message that says what was wrong and where; every endpoint but
//! `/healthz`, `/readyz` and `/api/openapi.json` needs an API key
//! (`Authorization: Bearer KEY`) with a role at least the endpoint's.
//!
//! The endpoints are listed, with their bodies and answers, in the OpenAPI
//! document the server itself serves ([`openapi::document`]).

mod admin;
mod auth;
mod customers;
mod error;
mod events;
mod openapi;
mod reads;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

pub use auth::Caller;
pub use error::{ApiError, ApiJson, Problem};
pub use openapi::document as openapi_document;

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::service::Service;
use crate::store::{Role, Store};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most events one request may carry.
pub const MAX_BATCH: usize = 1000;

/// The largest page a list endpoint gives.
pub const MAX_PAGE: i64 = 500;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    store: Store,
    pipeline: Arc<Pipeline>,
    service: Service,
    metrics: Arc<Metrics>,
    keys: auth::KeyCache,
    next_id: AtomicU64,
}

impl AppState {
    /// The state over `store` and `pipeline`, with the committer, evaluator
    /// and dispatcher started on the current tokio runtime. Events
    /// committed but not evaluated (by an earlier run that stopped) are
    /// evaluated first.
    pub fn new(store: Store, pipeline: Arc<Pipeline>) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        Arc::new(Self {
            service: Service::start(store.clone(), pipeline.clone(), metrics.clone()),
            store,
            pipeline,
            metrics,
            keys: auth::KeyCache::default(),
            next_id: AtomicU64::new(0),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The pipeline (to swap its plugins).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Stops taking events, commits what is queued, evaluates what is
    /// committed and delivers what is pending. Call after the server has
    /// stopped accepting requests.
    pub async fn shutdown(&self) {
        self.service.shutdown().await;
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .route(
            "/api/v1/customers/{id}",
            put(customers::put_customer).get(customers::get_customer),
        )
        .route(
            "/api/v1/customers/{id}/health-score",
            get(customers::health_score),
        )
        .route(
            "/api/v1/customers/{id}/usage-metrics",
            get(customers::usage_metrics),
        )
        .route(
            "/api/v1/customers/{id}/success-plan",
            put(customers::put_success_plan).get(customers::get_success_plan),
        )
        .route(
            "/api/v1/customers/{id}/intervention",
            post(customers::post_intervention),
        )
        .route("/api/v1/events", post(events::post_events))
        .route(
            "/api/v1/automation/triggers/{trigger}",
            post(events::post_trigger),
        )
        .route("/api/v1/scores", get(reads::list_scores))
        .route("/api/v1/actions", get(reads::list_actions))
        .route("/api/v1/audit", get(admin::list_audit))
        .route("/api/v1/keys", post(admin::create_key))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Counts every answered request by route template and status.
async fn count_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .request(&method, &route, response.status().as_u16());
    response
}

/// The server is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The server can serve: its database answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `postgres` or `sqlite`.
    pub database: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Ready),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Ready>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the database is not reachable: {e}")))?;
    Ok(Json(Ready {
        status: "ready".into(),
        database: state.store.backend().into(),
    }))
}

/// Prometheus metrics (OpenMetrics text): requests, events, pipeline runs,
/// and per plugin version invocations, traps, errors and fuel.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn metrics(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("rendering metrics: {e}")))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

/// Query parameters whose rejections are problem+json naming the
/// parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::invalid("query", rejection.body_text()))
    }
}

/// Parses an RFC 3339 time into milliseconds since the epoch.
pub(crate) fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| ApiError::invalid(field, format!("`{value}` is not an RFC 3339 time: {e}")))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::invalid(field, format!("`{value}` is out of range")))
}

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Checks an identifier: 1–128 letters, digits, `-`, `_`, `.` or `:`.
pub(crate) fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
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

/// A page size: the default when absent, refused past [`MAX_PAGE`].
pub(crate) fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "limit",
            format!("{n} is out of range: 1 to {MAX_PAGE}"),
        )),
    }
}
