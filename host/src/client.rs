//! A small client of a running vigil server's API (plain HTTP), for the
//! command line (`vigil plugin deploy|list|rollback|release`) and for
//! tests that drive several hosts.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not usable.
    #[error("`{url}` is not a server URL (http://HOST:PORT): {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or the exchange failed.
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("the server answered {status}: {detail}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The problem's detail (or the body).
        detail: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

/// A client of one server, with an optional API key.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str, key: Option<String>) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri =
            base.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Url {
                    url: base.clone(),
                    reason: e.to_string(),
                })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ClientError::Url {
                url: base,
                reason: "only http://HOST:PORT is supported".into(),
            });
        }
        Ok(Self {
            base,
            key,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends a request; the status and body of any answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(key) = &self.key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Url {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let unreachable = |reason: String| ClientError::Unreachable {
            url: url.clone(),
            reason,
        };
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }

    /// Sends a request and decodes a successful JSON answer; an error
    /// answer becomes [`ClientError::Status`] with the problem's detail.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let (status, body) = self.send(method, path, content_type, body).await?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|problem| problem["detail"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Status { status, detail });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET path` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None, Vec::new()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ClientError> {
        self.call(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }
}
