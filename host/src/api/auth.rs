//! API keys on requests: `Authorization: Bearer vgl_…`. No key → 401; a
//! key whose role is below what the endpoint needs → 403. Verified keys are
//! cached for a short while so reads do not each hit the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::store::{ApiKeyRecord, Role};

/// How long a verified key is trusted without asking the store again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Verified keys, by the full key text.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<HashMap<String, (Instant, ApiKeyRecord)>>,
}

impl KeyCache {
    fn get(&self, key: &str) -> Option<ApiKeyRecord> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(_, record)| record.clone())
    }

    fn put(&self, key: &str, record: ApiKeyRecord) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
            }
            entries.insert(key.to_string(), (Instant::now(), record));
        }
    }
}

/// The caller of a request: the key it presented.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's record.
    pub key: ApiKeyRecord,
    /// Where the request came from, for the audit log.
    pub origin: String,
}

impl Caller {
    /// The audit log's actor: `key:<id>`.
    pub fn actor(&self) -> String {
        format!("key:{}", self.key.id)
    }

    /// Refuses with 403 unless the key's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.key.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this endpoint needs the {} role; key {} has the {} role",
                role.as_str(),
                self.key.id,
                self.key.role.as_str()
            )))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("send an API key: `Authorization: Bearer KEY`".into())
        })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must read `Bearer KEY`".into())
            })?;
        let origin = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "http".to_string(), |info| format!("http:{}", info.0));
        if let Some(record) = state.keys.get(key) {
            return Ok(Caller {
                key: record,
                origin,
            });
        }
        let record = state
            .store
            .verify_api_key(key)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the API key is not valid".into()))?;
        state.keys.put(key, record.clone());
        Ok(Caller {
            key: record,
            origin,
        })
    }
}
