//! The OpenAPI document, generated from the handlers' annotations and the
//! request and answer types, so it cannot drift from them.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, customers, events, plugins, reads};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vigil",
        description = "Scores, signals and actions from sandboxed Wasm plugins. Every endpoint but /healthz, /readyz and /api/openapi.json needs `Authorization: Bearer KEY`; viewer keys read, operator keys also write, admin keys also read the audit log and create keys. Errors are application/problem+json."
    ),
    paths(
        super::healthz,
        super::readyz,
        super::metrics,
        serve,
        customers::put_customer,
        customers::get_customer,
        customers::health_score,
        customers::usage_metrics,
        customers::put_success_plan,
        customers::get_success_plan,
        customers::post_intervention,
        events::post_events,
        events::post_trigger,
        reads::list_scores,
        reads::list_actions,
        admin::list_audit,
        admin::create_key,
        plugins::deploy,
        plugins::list,
        plugins::detail,
        plugins::rollback,
        plugins::release,
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics, this document"),
        (name = "customers", description = "Profiles, scores, usage, success plans, interventions"),
        (name = "events", description = "Event ingest"),
        (name = "automation", description = "Automation triggers"),
        (name = "scores", description = "Scores across accounts"),
        (name = "actions", description = "The outbox"),
        (name = "admin", description = "Audit log and API keys"),
        (name = "plugins", description = "The plugin registry: deploy, list, roll back, release"),
    )
)]
struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI 3.1 document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
