//! The plugin registry over HTTP: deploy (upload a component), list,
//! inspect with this host's statistics, roll back, release from
//! quarantine.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, AppState, Caller, Problem, format_time};
use crate::lifecycle::{LifecycleError, StatsSnapshot};
use crate::store::{PluginVersion, RegistryActor, Role, VersionState};

/// The largest component an upload may carry.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// A version in the registry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionOut {
    /// The plugin's name.
    pub name: String,
    /// Its version (from `describe()`).
    pub version: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// scorer, trigger, condition, action, playbook or ruleset.
    pub kind: String,
    /// Bytes.
    pub size: i64,
    /// `active`, `inactive` or `quarantined`.
    pub state: String,
    /// Why it is in that state (a quarantine's cause, …).
    pub state_reason: String,
    /// Who deployed it first.
    pub deployed_by: String,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub deployed_at: String,
    /// `file:<name>`, `api`, `standard`.
    pub origin: String,
    /// When it last became active (RFC 3339); null if never.
    #[schema(format = DateTime)]
    pub activated_at: Option<String>,
    /// This host's statistics of the version since it loaded it.
    pub stats: StatsSnapshot,
}

fn version_out(state: &AppState, version: PluginVersion) -> VersionOut {
    let stats = state.lifecycle().stats(&version.digest);
    VersionOut {
        stats,
        state: version.state.as_str().to_string(),
        deployed_at: format_time(version.deployed_at),
        activated_at: (version.activated_at > 0).then(|| format_time(version.activated_at)),
        name: version.name,
        version: version.version,
        digest: version.digest,
        kind: version.kind,
        size: version.size,
        state_reason: version.state_reason,
        deployed_by: version.deployed_by,
        origin: version.origin,
    }
}

/// A version this host serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Serving {
    /// Its version.
    pub version: String,
    /// Its digest.
    pub digest: String,
}

/// A plugin: its active version and what this host serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginSummary {
    /// The plugin's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The active version in the registry; null when none is.
    pub active: Option<VersionOut>,
    /// What this host serves now (it converges on `active` within the
    /// registry poll interval).
    pub serving: Option<Serving>,
    /// How many versions the registry holds.
    pub versions: usize,
}

/// Every plugin in the registry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginList {
    /// The plugins, by name.
    pub plugins: Vec<PluginSummary>,
    /// The host answering.
    pub host: String,
    /// The registry clock now.
    pub registry_clock: i64,
    /// The registry clock this host's plugin set was built at.
    pub synced_clock: i64,
}

/// One plugin's versions, newest deploy first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginDetail {
    /// The plugin's name.
    pub name: String,
    /// What this host serves now.
    pub serving: Option<Serving>,
    /// Every version, newest deploy first, with this host's statistics.
    pub versions: Vec<VersionOut>,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeployOut {
    /// The version, now active.
    pub deployed: VersionOut,
    /// The version it replaced, if any.
    pub replaced: Option<VersionOut>,
    /// Whether it was active already (nothing changed).
    pub already_active: bool,
}

/// Where to roll back to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// A version or a digest of the plugin; default: the version that
    /// served before the active one.
    #[serde(default)]
    pub to: Option<String>,
}

/// Which quarantined version to release.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// A version or a digest of the plugin.
    pub version: String,
}

impl From<LifecycleError> for ApiError {
    fn from(error: LifecycleError) -> Self {
        match error {
            LifecycleError::Refused(_) | LifecycleError::Canary(_) => ApiError::Invalid {
                field: "body".into(),
                message: error.to_string(),
            },
            LifecycleError::Store(error) => error.into(),
            LifecycleError::UnknownPlugin(_) | LifecycleError::UnknownVersion { .. } => {
                ApiError::NotFound(error.to_string())
            }
            LifecycleError::NothingToRollBackTo(_) => ApiError::Conflict(error.to_string()),
            LifecycleError::Directory { .. } | LifecycleError::Join(_) => {
                ApiError::Internal(error.to_string())
            }
        }
    }
}

fn actor(caller: &Caller) -> RegistryActor {
    RegistryActor {
        actor: caller.actor(),
        origin: caller.origin.clone(),
    }
}

fn serving_of(state: &AppState, name: &str) -> Option<Serving> {
    state
        .lifecycle()
        .serving()
        .into_iter()
        .find(|p| &*p.name == name)
        .map(|p| Serving {
            version: p.version.to_string(),
            digest: p.digest.to_string(),
        })
}

/// Deploy a plugin (operator): the body is the component (`.wasm`). It is
/// compiled, checked (world, imports, `describe()`) and run as a canary
/// over fixture data; only then is it stored and made the active version
/// of its name, on every host. 201 when it became active, 200 when it was
/// active already; 422 with the reason when refused (the active version
/// keeps serving), 409 when it is quarantined.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component, at most 32 MiB"),
    responses(
        (status = 201, description = "Deployed and active", body = DeployOut),
        (status = 200, description = "That version was active already", body = DeployOut),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The component is over 32 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: not a plugin, a forbidden import, or it faulted in its canary run", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn deploy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the component is larger than the {} MiB limit",
                MAX_PLUGIN_BYTES >> 20
            ))
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "empty: send the component (.wasm) as the body".into(),
        ));
    }
    let report = state
        .lifecycle()
        .deploy(bytes.to_vec(), &actor(&caller))
        .await?;
    let status = if report.already_active {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let out = DeployOut {
        deployed: version_out(&state, report.version),
        replaced: report.replaced.map(|r| version_out(&state, r)),
        already_active: report.already_active,
    };
    Ok((status, Json(out)).into_response())
}

/// Every plugin in the registry with its active version, and what this
/// host serves (viewer).
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    responses(
        (status = 200, description = "The plugins", body = PluginList),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<PluginList>, ApiError> {
    caller.require(Role::Viewer)?;
    let versions = state.store().plugin_versions(None).await?;
    let mut plugins: Vec<PluginSummary> = Vec::new();
    for version in versions {
        if plugins.last().is_none_or(|p| p.name != version.name) {
            plugins.push(PluginSummary {
                name: version.name.clone(),
                kind: version.kind.clone(),
                active: None,
                serving: serving_of(&state, &version.name),
                versions: 0,
            });
        }
        if let Some(summary) = plugins.last_mut() {
            summary.versions += 1;
            if version.state == VersionState::Active {
                summary.active = Some(version_out(&state, version));
            }
        }
    }
    Ok(Json(PluginList {
        plugins,
        host: state.service().host_id().to_string(),
        registry_clock: state.store().registry_clock().await?,
        synced_clock: state.lifecycle().synced_clock(),
    }))
}

/// One plugin: every version with its state, who deployed it and when,
/// and this host's statistics (calls, traps, fuel, latency p50/p99)
/// (viewer).
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin's versions", body = PluginDetail),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn detail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    caller.require(Role::Viewer)?;
    let versions = state.store().plugin_versions(Some(&name)).await?;
    if versions.is_empty() {
        return Err(LifecycleError::UnknownPlugin(name).into());
    }
    Ok(Json(PluginDetail {
        serving: serving_of(&state, &name),
        versions: versions
            .into_iter()
            .map(|v| version_out(&state, v))
            .collect(),
        name,
    }))
}

/// Roll a plugin back (operator): to `to` (a version or digest), or to the
/// version that served before the active one. Every host serves it within
/// the registry poll interval.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/rollback", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    request_body = RollbackBody,
    responses(
        (status = 200, description = "The version now active", body = VersionOut),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing to roll back to, or the version is quarantined", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn rollback(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<VersionOut>, ApiError> {
    caller.require(Role::Operator)?;
    let active = state
        .lifecycle()
        .rollback(&name, body.to.as_deref(), &actor(&caller))
        .await?;
    Ok(Json(version_out(&state, active)))
}

/// Release a quarantined version (operator): it becomes inactive, so a
/// rollback can serve it again.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/release", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "Released", body = VersionOut),
        (status = 403, description = "The key's role is below operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin or version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version is not quarantined", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn release(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<VersionOut>, ApiError> {
    caller.require(Role::Operator)?;
    let released = state
        .lifecycle()
        .release(&name, &body.version, &actor(&caller))
        .await?;
    Ok(Json(version_out(&state, released)))
}
