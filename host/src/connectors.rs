//! Connectors: how the dispatcher carries out an intent. Webhook intents
//! name a connector (never an address: plugins cannot choose where data
//! goes); the operator maps connector names to URLs
//! (`--connector crm=http://crm.internal/hooks/vigil`). Every other kind is
//! carried out by the built-in log connector: the host logs it, and the
//! outbox row is the record other apps read (`GET /api/v1/actions`).
//!
//! A webhook is a `POST` of the intent's JSON body with an
//! `Idempotency-Key` (the intent's id), so a receiver can drop the repeat
//! of a delivery whose answer was lost. A 2xx answer delivers it; a
//! connection failure, a timeout, a 429 or a 5xx is retried with backoff
//! (10 s, 30 s, 90 s, …) up to [`MAX_ATTEMPTS`]; any other answer, or an
//! unknown connector, fails it for good.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Uri, header};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::store::IntentRecord;

/// Delivery attempts of a webhook before it fails for good.
pub const MAX_ATTEMPTS: i32 = 5;

/// How long one webhook call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connector specification that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Not `NAME=URL`.
    #[error(
        "`{0}` is not a connector: expected NAME=URL, for example crm=http://crm.internal/hooks"
    )]
    Spec(String),
    /// The URL is not one vigil can call.
    #[error("connector `{name}`: `{url}` is not usable: {reason}")]
    Url {
        /// The connector.
        name: String,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Carried out, by this connector.
    Delivered {
        /// `log`, or `webhook:<name>`.
        connector: String,
    },
    /// Not carried out this time; try again later.
    Retry {
        /// Why it failed.
        reason: String,
        /// After how long.
        after: Duration,
    },
    /// Not carried out, and it will not be.
    Failed {
        /// Why.
        reason: String,
    },
}

/// The connectors of a host.
#[derive(Debug, Clone)]
pub struct Connectors {
    webhooks: BTreeMap<String, Uri>,
    retry_base: Duration,
    client: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Default for Connectors {
    fn default() -> Self {
        Self {
            webhooks: BTreeMap::new(),
            retry_base: Duration::from_secs(10),
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Connectors {
    /// Connectors from `NAME=URL` specifications (plain `http://` URLs;
    /// reach an `https://` receiver through a local TLS proxy).
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, ConnectorError> {
        let mut connectors = Self::default();
        for spec in specs {
            let spec = spec.as_ref();
            let Some((name, url)) = spec.split_once('=') else {
                return Err(ConnectorError::Spec(spec.to_string()));
            };
            let name = name.trim();
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_name {
                return Err(ConnectorError::Spec(spec.to_string()));
            }
            let bad = |reason: &str| ConnectorError::Url {
                name: name.to_string(),
                url: url.to_string(),
                reason: reason.to_string(),
            };
            let uri: Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
            match uri.scheme_str() {
                Some("http") => {}
                Some("https") => {
                    return Err(bad(
                        "https is not supported; point the connector at a TLS-terminating proxy",
                    ));
                }
                _ => return Err(bad("expected an http:// URL")),
            }
            if uri.host().is_none() {
                return Err(bad("no host"));
            }
            connectors.webhooks.insert(name.to_string(), uri);
        }
        Ok(connectors)
    }

    /// The same connectors, retrying after `base`, 3 × `base`, 9 × `base`…
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// The configured webhook connectors' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.webhooks.keys().map(String::as_str)
    }

    /// Carries out `intent` once.
    pub async fn deliver(&self, intent: &IntentRecord) -> Attempt {
        if intent.intent.kind != "webhook" {
            tracing::info!(
                target: "vigil.outbox",
                intent = %intent.intent.id,
                kind = %intent.intent.kind,
                account = %intent.intent.account_id,
                body = %intent.intent.body,
                "intent carried out"
            );
            return Attempt::Delivered {
                connector: "log".into(),
            };
        }
        let name = intent.intent.body["connector"].as_str().unwrap_or("");
        let Some(uri) = self.webhooks.get(name) else {
            return Attempt::Failed {
                reason: format!(
                    "no webhook connector named `{name}` is configured on this host (serve --connector {name}=URL)"
                ),
            };
        };
        let body = intent.intent.body["body"]
            .as_str()
            .unwrap_or("{}")
            .to_string();
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("vigil/", env!("CARGO_PKG_VERSION")),
            )
            .header("idempotency-key", &intent.intent.id)
            .header("x-vigil-signal", &intent.intent.signal)
            .header("x-vigil-account", &intent.intent.account_id)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                return Attempt::Failed {
                    reason: format!("the webhook request cannot be built: {error}"),
                };
            }
        };
        let retry = |reason: String| {
            if intent.attempts + 1 >= MAX_ATTEMPTS {
                Attempt::Failed {
                    reason: format!("{reason} (attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS})"),
                }
            } else {
                let factor = 3u32.saturating_pow(u32::try_from(intent.attempts).unwrap_or(0));
                Attempt::Retry {
                    reason,
                    after: self.retry_base.saturating_mul(factor),
                }
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, self.client.request(request)).await {
            Err(_) => retry(format!(
                "{name}: no answer within {} s",
                CALL_TIMEOUT.as_secs()
            )),
            Ok(Err(error)) => retry(format!("{name}: {error}")),
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    Attempt::Delivered {
                        connector: format!("webhook:{name}"),
                    }
                } else if status.is_server_error() || status.as_u16() == 429 {
                    retry(format!("{name} answered {status}"))
                } else {
                    Attempt::Failed {
                        reason: format!("{name} answered {status}"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectors_are_name_equals_http_url_and_anything_else_is_refused_with_the_reason() {
        let connectors =
            Connectors::parse(&["crm=http://127.0.0.1:9/hooks", "pager=http://pager/x"]).unwrap();
        assert_eq!(connectors.names().collect::<Vec<_>>(), ["crm", "pager"]);
        for (spec, reason) in [
            ("crm", "NAME=URL"),
            ("=http://x", "NAME=URL"),
            ("c r m=http://x", "NAME=URL"),
            ("crm=https://x/", "TLS-terminating proxy"),
            ("crm=ftp://x/", "http://"),
            ("crm=not a url", "not a URL"),
        ] {
            let error = Connectors::parse(&[spec]).unwrap_err().to_string();
            assert!(error.contains(reason), "{spec}: {error}");
        }
    }
}
