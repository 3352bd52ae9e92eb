//! One error type for the API, rendered as `application/problem+json`
//! (RFC 9457), and a JSON extractor whose rejections are rendered the same way.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::StoreError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the JSON this endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// A field has a value the endpoint cannot accept.
    #[error("`{field}`: {message}")]
    Invalid {
        /// The field, as a JSON path (`[0].occurred_at`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An event names an account that does not exist.
    #[error("{0}")]
    UnknownAccount(String),
    /// No API key, or not a valid one.
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role is below what the endpoint needs.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing at this path.
    #[error("{0}")]
    NotFound(String),
    /// The path exists, but not with this method (the `Allow` header names
    /// those it has).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request conflicts with what is stored (an idempotency key or
    /// event id reused with another body).
    #[error("{0}")]
    Conflict(String),
    /// The body is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A field with a bad value.
    pub fn invalid(field: &str, message: String) -> Self {
        Self::Invalid {
            field: field.to_string(),
            message,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } | ApiError::UnknownAccount(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyConflict { .. } | StoreError::EventIdConflict(_) => {
                ApiError::Conflict(error.to_string())
            }
            StoreError::Quarantined { .. } | StoreError::NotQuarantined { .. } => {
                ApiError::Conflict(error.to_string())
            }
            StoreError::NoSuchVersion(_) => ApiError::NotFound(error.to_string()),
            StoreError::Database(_) | StoreError::LeaseLost { .. } => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// An error answer (RFC 9457 problem details).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says the kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, and where.
    pub detail: String,
    /// The field at fault, as a JSON path (`[0].occurred_at`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let problem = Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: self.to_string(),
            field: match &self {
                ApiError::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
        };
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `Json<T>` whose rejections are problem+json: 413 over the size limit,
/// 400 without a JSON content type or for malformed JSON, 422 for JSON of
/// the wrong shape (unknown fields, wrong types), each saying where.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection_to_problem(rejection).into_response()),
        }
    }
}

fn rejection_to_problem(rejection: JsonRejection) -> ApiError {
    let message = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::Invalid {
            field: "body".into(),
            message,
        },
        JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest(message),
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(format!(
            "the body is larger than the {} KiB limit",
            super::MAX_BODY_BYTES >> 10
        )),
        other => ApiError::BadRequest(other.body_text()),
    }
}

impl From<crate::service::ServiceError> for ApiError {
    fn from(error: crate::service::ServiceError) -> Self {
        match error {
            crate::service::ServiceError::Store(error) => error.into(),
            crate::service::ServiceError::ShuttingDown => {
                ApiError::Unavailable("the host is shutting down; retry on another host".into())
            }
            thread @ crate::service::ServiceError::Thread(_) => {
                ApiError::Internal(thread.to_string())
            }
        }
    }
}
