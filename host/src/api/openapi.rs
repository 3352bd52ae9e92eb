//! The OpenAPI document, generated from the handlers' annotations and the
//! request and answer types, so it cannot drift from them.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn, Paths};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{ID_PATTERN, MAX_BATCH, admin, customers, events, plugins, reads};
use crate::names::{
    CHANNELS, INDUSTRIES, LEVELS, TIERS, TIMINGS, channel_name, level_name, timing_name,
};
use crate::store::{IntentState, Role};

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
    // `AllowedValues` before `StoredCustomer`, which copies the profile's
    // schema with its values.
    modifiers(&BearerKeys, &CommonAnswers, &AllowedValues, &StoredCustomer, &BinaryUpload),
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

/// Every operation of every path.
fn operations(paths: &mut Paths) -> impl Iterator<Item = &mut Operation> {
    paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
    })
}

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
        for operation in operations(&mut openapi.paths) {
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

/// The closed sets of values the API takes, the identifiers it checks and
/// the size of an event batch, written into the schemas from the constants
/// the handlers check against, so that a client built from the document
/// refuses what the server would (the descriptions name the values too,
/// for readers).
struct AllowedValues;

impl AllowedValues {
    /// The values of each body field that takes one of a few names:
    /// (schema, property, values).
    fn fields() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
        vec![
            ("CustomerBody", "tier", tier_names()),
            ("CustomerBody", "industry", industry_names()),
            (
                "InterventionBody",
                "action",
                customers::INTERVENTIONS.to_vec(),
            ),
            (
                "InterventionBody",
                "timing",
                TIMINGS.iter().map(|t| timing_name(*t)).collect(),
            ),
            (
                "InterventionBody",
                "level",
                LEVELS.iter().map(|l| level_name(*l)).collect(),
            ),
            (
                "InterventionBody",
                "channel",
                CHANNELS.iter().map(|c| channel_name(*c)).collect(),
            ),
            ("Objective", "status", customers::OBJECTIVE_STATES.to_vec()),
            (
                "KeyBody",
                "role",
                Role::ALL.iter().map(|r| r.as_str()).collect(),
            ),
        ]
    }

    /// The body fields the handlers check with `check_id`: (schema,
    /// property).
    const IDENTIFIER_FIELDS: [(&str, &str); 5] = [
        ("EventBody", "id"),
        ("EventBody", "account_id"),
        ("EventBody", "idempotency_key"),
        ("TriggerBody", "account_id"),
        ("InterventionBody", "idempotency_key"),
    ];

    /// The query parameters the handlers check with `check_id`: (path,
    /// parameter); every path parameter called `id` is one too.
    const IDENTIFIER_PARAMETERS: [(&str, &str); 3] = [
        ("/api/v1/scores", "name"),
        ("/api/v1/scores", "cursor"),
        ("/api/v1/actions", "account_id"),
    ];

    /// The values of each parameter that takes one of a few names:
    /// (path, parameter, values); every path has one operation with it.
    fn parameters() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
        vec![
            ("/api/v1/scores", "band", reads::BANDS.to_vec()),
            ("/api/v1/scores", "tier", tier_names()),
            ("/api/v1/scores", "industry", industry_names()),
            (
                "/api/v1/actions",
                "state",
                IntentState::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            ("/api/v1/actions", "kind", reads::KINDS.to_vec()),
            ("/api/v1/events", "wait", events::WAITS.to_vec()),
            (
                "/api/v1/automation/triggers/{trigger}",
                "trigger",
                events::TRIGGERS.iter().map(|(name, _)| *name).collect(),
            ),
        ]
    }

    /// The property `property` of the component schema `schema`.
    fn field<'a>(
        components: &'a mut Components,
        schema: &str,
        property: &str,
    ) -> Option<&'a mut RefOr<Schema>> {
        match components.schemas.get_mut(schema) {
            Some(RefOr::T(Schema::Object(object))) => object.properties.get_mut(property),
            _ => None,
        }
    }

    /// The parameter `name` of the GET or POST operation of `path`.
    fn parameter<'a>(
        openapi: &'a mut utoipa::openapi::OpenApi,
        path: &str,
        name: &str,
    ) -> Option<&'a mut RefOr<Schema>> {
        let item = openapi.paths.paths.get_mut(path)?;
        [&mut item.get, &mut item.post]
            .into_iter()
            .flatten()
            .flat_map(|operation| operation.parameters.iter_mut().flatten())
            .find_map(|parameter| match parameter {
                RefOr::T(parameter) if parameter.name == name => parameter.schema.as_mut(),
                _ => None,
            })
    }

    /// Gives a string schema the identifier pattern.
    fn identifier(schema: &mut RefOr<Schema>) {
        if let RefOr::T(Schema::Object(object)) = schema {
            object.pattern = Some(ID_PATTERN.into());
        }
    }

    /// Restricts a string schema to `values` (and null, where it was
    /// nullable: an optional field may be sent as null).
    fn restrict(schema: &mut RefOr<Schema>, values: &[&str]) {
        if let RefOr::T(Schema::Object(object)) = schema {
            let mut allowed: Vec<serde_json::Value> =
                values.iter().map(|v| serde_json::Value::from(*v)).collect();
            if matches!(&object.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
            {
                allowed.push(serde_json::Value::Null);
            }
            object.enum_values = Some(allowed);
        }
    }
}

impl Modify for AllowedValues {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            for (schema, property, values) in Self::fields() {
                if let Some(field) = Self::field(components, schema, property) {
                    Self::restrict(field, &values);
                }
            }
            for (schema, property) in Self::IDENTIFIER_FIELDS {
                if let Some(field) = Self::field(components, schema, property) {
                    Self::identifier(field);
                }
            }
            // One event or an array of 1 to `MAX_BATCH` of them.
            if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut("EventsBody")
            {
                for item in &mut one_of.items {
                    if let RefOr::T(Schema::Array(batch)) = item {
                        batch.min_items = Some(1);
                        batch.max_items = Some(MAX_BATCH);
                    }
                }
            }
        }
        for (path, name, values) in Self::parameters() {
            if let Some(schema) = Self::parameter(openapi, path, name) {
                Self::restrict(schema, &values);
            }
        }
        for (path, name) in Self::IDENTIFIER_PARAMETERS {
            if let Some(schema) = Self::parameter(openapi, path, name) {
                Self::identifier(schema);
            }
        }
        // Every account id in a path is checked as an identifier.
        for operation in operations(&mut openapi.paths) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && parameter.name == "id"
                    && parameter.parameter_in == ParameterIn::Path
                    && let Some(schema) = parameter.schema.as_mut()
                {
                    Self::identifier(schema);
                }
            }
        }
    }
}

fn tier_names() -> Vec<&'static str> {
    TIERS.iter().map(|(name, _)| *name).collect()
}

fn industry_names() -> Vec<&'static str> {
    INDUSTRIES.iter().map(|(name, _)| *name).collect()
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
