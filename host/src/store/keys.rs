//! API keys: a public id and a secret, of which only the SHA-256 is stored.
//! A key reads `vgl_<id>_<secret>`; the id finds the row, the secret's hash
//! must match it.

use rand::TryRng as _;
use rand::rngs::SysRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::audit::AppendAudit;
use super::{AuditEntry, Store, StoreError};

/// What a key may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads scores, actions, metrics.
    Viewer,
    /// Also posts events, interventions, success plans, automation
    /// triggers, and deploys plugins.
    Operator,
    /// Also reads the audit log and manages keys.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    /// The public id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// What it is for.
    pub label: String,
    /// When it was created.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The prefix of every key.
pub const KEY_PREFIX: &str = "vgl_";

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `vgl_<id>_<secret>`.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 12) && hexish(secret, 64)).then_some((id, secret))
}

/// Compares two strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Store {
    /// Creates a key with `role`; returns the key (shown once, never
    /// stored) and its record. The audit entry is written with it.
    pub async fn create_api_key(
        &self,
        role: Role,
        label: &str,
        created_by: &str,
        origin: &str,
    ) -> Result<(String, ApiKeyRecord), StoreError> {
        let mut bytes = [0u8; 38];
        SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| StoreError::Entropy(e.to_string()))?;
        let id = hex::encode(&bytes[..6]);
        let secret = hex::encode(&bytes[6..]);
        let record = ApiKeyRecord {
            id: id.clone(),
            role,
            label: label.to_string(),
            created_at: super::now_ms(),
            created_by: created_by.to_string(),
            revoked_at: None,
        };
        let audit = AuditEntry {
            at: record.created_at,
            actor: created_by.to_string(),
            action: "key.create".into(),
            resource: format!("key:{id}"),
            origin: origin.to_string(),
            success: true,
            details: serde_json::json!({"role": role.as_str(), "label": label}),
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO api_keys (id, role, secret_hash, label, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(role.as_str())
            .bind(secret_hash(&secret))
            .bind(label)
            .bind(record.created_at)
            .bind(created_by)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(audit).await?;
            tx.commit().await?;
        });
        Ok((format!("{KEY_PREFIX}{id}_{secret}"), record))
    }

    /// The record of `key` when it is a valid, unrevoked key.
    pub async fn verify_api_key(&self, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some((id, secret)) = split_key(key) else {
            return Ok(None);
        };
        type Row = (String, String, String, String, i64, String, Option<i64>);
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, role, secret_hash, label, created_at, created_by, revoked_at
                 FROM api_keys WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some((id, role, stored_hash, label, created_at, created_by, revoked_at)) = row else {
            return Ok(None);
        };
        if revoked_at.is_some() || !constant_time_eq(&stored_hash, &secret_hash(secret)) {
            return Ok(None);
        }
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            what: "api key",
            reason: format!("key {id} has role `{role}`"),
        })?;
        Ok(Some(ApiKeyRecord {
            id,
            role,
            label,
            created_at,
            created_by,
            revoked_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_into_its_id_and_secret_and_nothing_else_does() {
        let key = format!("vgl_{}_{}", "a1".repeat(6), "0f".repeat(32));
        assert_eq!(
            split_key(&key),
            Some(("a1a1a1a1a1a1", "0f".repeat(32).as_str()))
        );
        assert_eq!(split_key("vgl_short_0f"), None);
        assert_eq!(split_key(&key.replace("vgl_", "xyz_")), None);
        assert_eq!(split_key(&format!("{key}zz")), None);
    }

    #[test]
    fn roles_are_ordered_from_viewer_to_admin() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
