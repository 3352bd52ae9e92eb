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
mod plugins;
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
pub use plugins::MAX_PLUGIN_BYTES;

use crate::lifecycle::{Lifecycle, LifecycleConfig, LifecycleError, PluginSource};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::runtime::Runtime;
use crate::service::{HostConfig, Service, ServiceError};
use crate::store::{Role, Store, StoreError};

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
    lifecycle: Arc<Lifecycle>,
    service: Service,
    metrics: Arc<Metrics>,
    keys: auth::KeyCache,
    ids: UniqueIds,
    /// Accounts known to exist. Accounts are never deleted, so an account
    /// once found is not looked up again on the ingest path.
    accounts: std::sync::RwLock<std::collections::HashSet<String>>,
}

/// How a host starts: its place among the hosts sharing the store, where
/// its plugins come from, and how their lifecycle behaves.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Id, leases and the scheduler's period.
    pub host: HostConfig,
    /// The plugins registered at start (and the directory watched).
    pub plugins: PluginSource,
    /// Circuit breaker, registry polling, directory debounce.
    pub lifecycle: LifecycleConfig,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            host: HostConfig::default(),
            plugins: PluginSource::Standard,
            lifecycle: LifecycleConfig::default(),
        }
    }
}

/// Why a host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugins could not be registered or loaded.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The background service could not start.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl AppState {
    /// Starts a host over `store` on the current tokio runtime: registers
    /// and loads its plugins (following the registry from then on), joins
    /// the hosts sharing the store, and starts the committer, evaluator,
    /// coordinator and dispatcher. Events committed but not evaluated (by
    /// an earlier run that stopped) are evaluated first.
    pub async fn start(
        store: Store,
        runtime: Arc<Runtime>,
        options: HostOptions,
    ) -> Result<Arc<Self>, StartError> {
        let metrics = Arc::new(Metrics::new());
        let lifecycle = Lifecycle::start(
            store.clone(),
            runtime,
            options.plugins,
            &options.host.host_id,
            options.lifecycle,
            metrics.clone(),
        )
        .await?;
        let service = Service::start(
            store.clone(),
            lifecycle.pipeline().clone(),
            metrics.clone(),
            lifecycle.clone(),
            options.host,
        )
        .await?;
        Ok(Arc::new(Self {
            store,
            lifecycle,
            service,
            metrics,
            keys: auth::KeyCache::default(),
            ids: UniqueIds::new(),
            accounts: std::sync::RwLock::default(),
        }))
    }

    /// Which of `ids` are known accounts: those seen before from memory,
    /// the rest from the store.
    async fn known_accounts(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::with_capacity(ids.len());
        let mut unknown = Vec::new();
        if let Ok(cache) = self.accounts.read() {
            for id in ids {
                if cache.contains(*id) {
                    known.insert((*id).to_string());
                } else {
                    unknown.push(*id);
                }
            }
        }
        if !unknown.is_empty() {
            let found = self.store.known_accounts(&unknown).await?;
            if let Ok(mut cache) = self.accounts.write() {
                cache.extend(found.iter().cloned());
            }
            known.extend(found);
        }
        Ok(known)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The pipeline (its plugin set is the registry's active set).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        self.lifecycle.pipeline()
    }

    /// The plugin lifecycle.
    pub fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
    }

    /// The background service (group commit, evaluation, coordination,
    /// delivery).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Stops taking events, commits what is queued, evaluates what is
    /// committed, delivers what is pending and gives the leases back. Call
    /// after the server has stopped accepting requests.
    pub async fn shutdown(&self) {
        self.lifecycle.shutdown().await;
        self.service.shutdown().await;
    }
}

/// Identifiers this process hands out (event ids, intervention keys):
/// unique across hosts and restarts without a lookup, from a random
/// 48-bit prefix drawn at start and a counter.
#[derive(Debug)]
struct UniqueIds {
    prefix: u64,
    counter: AtomicU64,
}

impl UniqueIds {
    fn new() -> Self {
        use rand::TryRng as _;
        let mut bytes = [0u8; 8];
        // Without OS randomness the clock still separates restarts; hosts
        // sharing a store then rely on the nanoseconds differing.
        let prefix = match rand::rngs::SysRng.try_fill_bytes(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        Self {
            prefix: prefix & 0xffff_ffff_ffff,
            counter: AtomicU64::new(0),
        }
    }

    /// The next identifier: 24 hex digits.
    fn next(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{:012x}{:012x}", self.prefix, n & 0xffff_ffff_ffff)
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
        .route(
            "/api/v1/plugins",
            post(plugins::deploy)
                .layer(DefaultBodyLimit::max(plugins::MAX_PLUGIN_BYTES))
                .get(plugins::list),
        )
        .route("/api/v1/plugins/{name}", get(plugins::detail))
        .route("/api/v1/plugins/{name}/rollback", post(plugins::rollback))
        .route("/api/v1/plugins/{name}/release", post(plugins::release))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        // axum answers a known path with an unknown method with an empty
        // 405; this one is problem+json like every other error (axum still
        // adds the `Allow` header).
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::MethodNotAllowed(format!(
                "this endpoint does not take {method}; the Allow header lists what it takes"
            ))
        })
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

/// What [`check_id`] takes, as the OpenAPI document's `pattern`.
pub(crate) const ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,128}$";

/// Checks an identifier: 1–128 letters, digits, `-`, `_`, `.` or `:`
/// ([`ID_PATTERN`]).
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
