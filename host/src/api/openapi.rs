//! The OpenAPI document, generated from the handlers' annotations and the
//! request and answer types, so it cannot drift from them.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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
    modifiers(&BearerKeys, &CommonAnswers, &StoredCustomer, &BinaryUpload),
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

/// The answers every operation of a kind can give, added where its
/// annotation does not name them, so that a client built from the document
/// alone expects them: an operation behind a key can answer 401 (no valid
/// key) and 503 (the key is checked against the store); one that takes
/// query parameters, an account id or a body, 422 (a value it cannot take:
/// an account id is checked for its characters and length); one
/// that takes a JSON body, 400 (not JSON) and 413 (over 1 MiB).
struct CommonAnswers;

impl CommonAnswers {
    fn add(operation: &mut Operation, status: &str, description: &str) {
        let problem = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build();
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/problem+json", problem)
                        .build(),
                )
            });
    }
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let keyed = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let json_body = matches!(&operation.request_body,
                    Some(RefOr::T(body)) if body.content.contains_key("application/json"));
                let takes_values = operation.request_body.is_some()
                    || operation.parameters.iter().flatten().any(|parameter| {
                        matches!(parameter, RefOr::T(p)
                            if p.parameter_in == ParameterIn::Query || p.name == "id")
                    });
                if keyed {
                    Self::add(operation, "401", "No valid API key");
                    Self::add(operation, "503", "The database is unreachable");
                }
                if takes_values {
                    Self::add(
                        operation,
                        "422",
                        "A parameter or field has a value the API cannot take (the `field` says which)",
                    );
                }
                if json_body {
                    Self::add(
                        operation,
                        "400",
                        "The body is not JSON, or not sent as `application/json`",
                    );
                    Self::add(operation, "413", "The body is over 1 MiB");
                }
            }
        }
    }
}

/// A stored customer as one object: the profile's fields, every one of
/// them given, and the id. Derived, it is the profile (which refuses
/// unknown fields, as a request body must) and the id in an `allOf`, which
/// no answer can satisfy: a strict validator would refuse the `id` as a
/// field the profile does not know.
struct StoredCustomer;

impl Modify for StoredCustomer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(mut stored))) =
            components.schemas.get("CustomerBody").cloned()
        else {
            return;
        };
        stored.additional_properties = None;
        stored.description =
            Some("A stored account profile: every field of the profile, and the id.".into());
        stored.properties.insert(
            "id".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The account's id."))
                .into(),
        );
        stored.required = stored.properties.keys().cloned().collect();
        components
            .schemas
            .insert("Customer".into(), RefOr::T(Schema::Object(stored)));
    }
}

/// A plugin upload's body as the component's bytes: derived from the
/// handler's `Vec<u8>`, it reads as a JSON array of numbers.
struct BinaryUpload;

impl Modify for BinaryUpload {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let upload = openapi
            .paths
            .paths
            .get_mut("/api/v1/plugins")
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.request_body.as_mut());
        if let Some(RefOr::T(body)) = upload
            && let Some(RefOr::T(wasm)) = body.content.get_mut("application/wasm")
        {
            wasm.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                    .into(),
            ));
        }
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
