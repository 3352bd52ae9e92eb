//! The plugin registry: every version ever deployed, content-addressed by
//! its SHA-256 digest, with its bytes and state. At most one version of a
//! name is active. Every change bumps the registry clock, which hosts
//! poll, and notifies `vigil_plugins` (PostgreSQL) as a hint to poll now;
//! each change commits with its audit entry.

use serde::Serialize;
use sqlx::{Postgres, Sqlite, Transaction};

use super::audit::AppendAudit;
use super::outbox::WriteOutbox;
use super::{AuditEntry, NewIntent, Store, StoreError, now_ms};

/// The channel hosts listen on for registry changes (PostgreSQL).
pub const REGISTRY_CHANNEL: &str = "vigil_plugins";

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionState {
    /// Serving: the one version of its name the hosts run.
    Active,
    /// Deployed once, not serving (replaced, rolled back, unloaded or
    /// released from quarantine); a rollback can make it active again.
    Inactive,
    /// Stopped by the circuit breaker after repeated faults; it serves
    /// again only after an operator releases it and rolls back to it.
    Quarantined,
}

impl VersionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Active => "active",
            VersionState::Inactive => "inactive",
            VersionState::Quarantined => "quarantined",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            "quarantined" => Ok(Self::Quarantined),
            other => Err(StoreError::Corrupt {
                what: "plugin version",
                reason: format!("state `{other}`"),
            }),
        }
    }
}

/// A version in the registry (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginVersion {
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// The plugin's name (from `describe()`).
    pub name: String,
    /// Its version (from `describe()`).
    pub version: String,
    /// scorer, trigger, condition, action, playbook or ruleset.
    pub kind: String,
    /// Its size in bytes.
    pub size: i64,
    /// Where it is in its life.
    pub state: VersionState,
    /// Why it is in that state (the quarantine's cause, …).
    pub state_reason: String,
    /// Who deployed it first (`key:<id>`, `host:<id>`).
    pub deployed_by: String,
    /// When (ms since the epoch).
    pub deployed_at: i64,
    /// Where it came from: `file:<name>`, `api`, `standard`.
    pub origin: String,
    /// When it last became active (0: never).
    pub activated_at: i64,
}

/// A checked component to put in the registry.
#[derive(Debug, Clone, Copy)]
pub struct NewPluginVersion<'a> {
    /// SHA-256 of `bytes`, hex.
    pub digest: &'a str,
    /// The plugin's name.
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Its kind.
    pub kind: &'a str,
    /// The component.
    pub bytes: &'a [u8],
}

/// Who asks for a registry change, and from where.
#[derive(Debug, Clone)]
pub struct RegistryActor {
    /// `key:<id>`, `host:<id>`, `cli:<user>`.
    pub actor: String,
    /// `http:<addr>`, `file:<name>`, `startup`, `circuit-breaker`.
    pub origin: String,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// The version is now active (new to the registry, or made active again).
    Activated {
        /// The version that was active before, if any.
        replaced: Option<PluginVersion>,
    },
    /// The version was active already; nothing changed.
    AlreadyActive,
    /// The version is known already and was left in its state (a
    /// registration at start-up respects rollbacks and quarantines).
    Known(VersionState),
}

const COLUMNS: &str = "digest, name, version, kind, CAST(length(bytes) AS BIGINT), state, state_reason, deployed_by, deployed_at, origin, activated_at";

type Row = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    String,
    i64,
);

fn version(row: Row) -> Result<PluginVersion, StoreError> {
    let (
        digest,
        name,
        version,
        kind,
        size,
        state,
        state_reason,
        deployed_by,
        deployed_at,
        origin,
        activated_at,
    ) = row;
    Ok(PluginVersion {
        digest,
        name,
        version,
        kind,
        size,
        state: VersionState::parse(&state)?,
        state_reason,
        deployed_by,
        deployed_at,
        origin,
        activated_at,
    })
}

/// Registry changes inside a transaction of either backend.
trait RegistryTx {
    async fn version_by_digest(
        &mut self,
        digest: &str,
    ) -> Result<Option<PluginVersion>, StoreError>;
    async fn active_of(&mut self, name: &str) -> Result<Option<PluginVersion>, StoreError>;
    async fn insert_version(
        &mut self,
        new: &NewPluginVersion<'_>,
        who: &RegistryActor,
        at: i64,
    ) -> Result<(), StoreError>;
    async fn set_state(
        &mut self,
        digest: &str,
        state: VersionState,
        reason: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Bumps the registry clock and notifies the hosts; the new clock.
    async fn bump_clock(&mut self) -> Result<i64, StoreError>;
}

macro_rules! registry_tx_for {
    ($db:ty, $notify:expr) => {
        impl RegistryTx for Transaction<'_, $db> {
            async fn version_by_digest(
                &mut self,
                digest: &str,
            ) -> Result<Option<PluginVersion>, StoreError> {
                let row: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM plugin_versions WHERE digest = $1"
                ))
                .bind(digest)
                .fetch_optional(&mut **self)
                .await?;
                row.map(version).transpose()
            }

            async fn active_of(&mut self, name: &str) -> Result<Option<PluginVersion>, StoreError> {
                let row: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM plugin_versions WHERE name = $1 AND state = 'active'"
                ))
                .bind(name)
                .fetch_optional(&mut **self)
                .await?;
                row.map(version).transpose()
            }

            async fn insert_version(
                &mut self,
                new: &NewPluginVersion<'_>,
                who: &RegistryActor,
                at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO plugin_versions (digest, name, version, kind, bytes, state, deployed_by, deployed_at, origin)
                     VALUES ($1, $2, $3, $4, $5, 'inactive', $6, $7, $8)",
                )
                .bind(new.digest)
                .bind(new.name)
                .bind(new.version)
                .bind(new.kind)
                .bind(new.bytes)
                .bind(&who.actor)
                .bind(at)
                .bind(&who.origin)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn set_state(
                &mut self,
                digest: &str,
                state: VersionState,
                reason: &str,
                at: i64,
            ) -> Result<(), StoreError> {
                // Becoming active stamps the time: a rollback or a
                // quarantine's fallback picks the version that served last.
                let query = if state == VersionState::Active {
                    sqlx::query(
                        "UPDATE plugin_versions SET state = $1, state_reason = $2, activated_at = $3 WHERE digest = $4",
                    )
                    .bind(state.as_str())
                    .bind(reason)
                    .bind(at)
                } else {
                    sqlx::query("UPDATE plugin_versions SET state = $1, state_reason = $2 WHERE digest = $3")
                        .bind(state.as_str())
                        .bind(reason)
                };
                query.bind(digest).execute(&mut **self).await?;
                Ok(())
            }

            async fn bump_clock(&mut self) -> Result<i64, StoreError> {
                let clock: i64 = sqlx::query_scalar(
                    "UPDATE registry_clock SET version = version + 1 WHERE id = 1 RETURNING version",
                )
                .fetch_one(&mut **self)
                .await?;
                if let Some(notify) = $notify {
                    // Delivered at commit, and only if it commits.
                    sqlx::query(notify)
                        .bind(REGISTRY_CHANNEL)
                        .bind(clock.to_string())
                        .execute(&mut **self)
                        .await?;
                }
                Ok(clock)
            }
        }
    };
}

registry_tx_for!(Postgres, Some("SELECT pg_notify($1, $2)"));
registry_tx_for!(Sqlite, None::<&str>);

fn audit(
    who: &RegistryActor,
    action: &str,
    version: &PluginVersion,
    details: serde_json::Value,
) -> AuditEntry {
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("digest".into(), version.digest.clone().into());
        map.insert("version".into(), version.version.clone().into());
    }
    AuditEntry {
        at: now_ms(),
        actor: who.actor.clone(),
        action: action.into(),
        resource: format!("plugin:{}", version.name),
        origin: who.origin.clone(),
        success: true,
        details,
    }
}

/// Makes `target` the active version of its name inside `tx`, replacing
/// the active one; the replaced version.
macro_rules! activate_in {
    ($tx:expr, $target:expr, $at:expr, $reason:expr) => {{
        let replaced = $tx.active_of(&$target.name).await?;
        if let Some(old) = &replaced {
            $tx.set_state(&old.digest, VersionState::Inactive, $reason, $at)
                .await?;
        }
        $tx.set_state(&$target.digest, VersionState::Active, "", $at)
            .await?;
        replaced
    }};
}

impl Store {
    /// A listener for registry notifications (PostgreSQL); `None` on
    /// SQLite, or when it cannot be set up (polling still converges).
    pub async fn listen_registry(&self) -> Option<sqlx::postgres::PgListener> {
        let Store::Postgres(pool) = self else {
            return None;
        };
        let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot open a connection to listen on");
                return None;
            }
        };
        match listener.listen(REGISTRY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for registry changes");
                None
            }
        }
    }

    /// The registry clock: it moves with every registry change.
    pub async fn registry_clock(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT version FROM registry_clock WHERE id = 1")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Every version of `name` (or of every plugin), newest deploy first.
    pub async fn plugin_versions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<PluginVersion>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, pool => {
            match name {
                Some(name) => sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM plugin_versions WHERE name = $1 ORDER BY deployed_at DESC, digest"
                ))
                .bind(name)
                .fetch_all(pool)
                .await?,
                None => sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM plugin_versions ORDER BY name, deployed_at DESC, digest"
                ))
                .fetch_all(pool)
                .await?,
            }
        });
        rows.into_iter().map(version).collect()
    }

    /// The active version of every plugin, by name.
    pub async fn active_plugin_versions(&self) -> Result<Vec<PluginVersion>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM plugin_versions WHERE state = 'active' ORDER BY name"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(version).collect()
    }

    /// The version with `digest`.
    pub async fn plugin_version(&self, digest: &str) -> Result<Option<PluginVersion>, StoreError> {
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM plugin_versions WHERE digest = $1"))
                .bind(digest)
                .fetch_optional(pool)
                .await?
        });
        row.map(version).transpose()
    }

    /// The component with `digest`.
    pub async fn plugin_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT bytes FROM plugin_versions WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Deploys a checked component: stored if new, then made the active
    /// version of its name (the one active before becomes inactive), with a
    /// `plugin.deploy` audit entry. A quarantined version is refused
    /// ([`StoreError::Quarantined`]) until an operator releases it.
    pub async fn deploy_plugin(
        &self,
        new: &NewPluginVersion<'_>,
        who: &RegistryActor,
    ) -> Result<Deployed, StoreError> {
        self.put_plugin(new, who, false).await
    }

    /// Registers a component found at start-up (the plugins directory, the
    /// embedded standard set): a version the registry has never seen is
    /// deployed; a known one is left in its state, so a rollback or a
    /// quarantine outlives a restart.
    pub async fn register_plugin(
        &self,
        new: &NewPluginVersion<'_>,
        who: &RegistryActor,
    ) -> Result<Deployed, StoreError> {
        self.put_plugin(new, who, true).await
    }

    async fn put_plugin(
        &self,
        new: &NewPluginVersion<'_>,
        who: &RegistryActor,
        only_if_unknown: bool,
    ) -> Result<Deployed, StoreError> {
        let at = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // One registry change at a time across hosts: the chain lock.
            tx.lock_chain().await?;
            let existing = tx.version_by_digest(new.digest).await?;
            match &existing {
                Some(known) if only_if_unknown => return Ok(Deployed::Known(known.state)),
                Some(known) if known.state == VersionState::Active => {
                    return Ok(Deployed::AlreadyActive);
                }
                Some(known) if known.state == VersionState::Quarantined => {
                    return Err(StoreError::Quarantined {
                        name: known.name.clone(),
                        version: known.version.clone(),
                        reason: known.state_reason.clone(),
                    });
                }
                Some(_) => {}
                None => tx.insert_version(new, who, at).await?,
            }
            let target = match tx.version_by_digest(new.digest).await? {
                Some(target) => target,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "plugin version",
                        reason: format!("`{}` vanished while being deployed", new.digest),
                    });
                }
            };
            let replaced = activate_in!(tx, target, at, "replaced by a deploy");
            let clock = tx.bump_clock().await?;
            let details = serde_json::json!({
                "replaced": replaced.as_ref().map(|r| &r.digest),
                "new": existing.is_none(),
                "registry_clock": clock,
            });
            tx.append_audit(audit(who, "plugin.deploy", &target, details)).await?;
            tx.commit().await?;
            Ok(Deployed::Activated { replaced })
        })
    }

    /// Makes the version with `digest` (inactive, of the same plugin) the
    /// active one again, with a `plugin.rollback` audit entry; the version
    /// it replaced.
    pub async fn rollback_plugin(
        &self,
        digest: &str,
        who: &RegistryActor,
    ) -> Result<Option<PluginVersion>, StoreError> {
        let at = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            tx.lock_chain().await?;
            let Some(target) = tx.version_by_digest(digest).await? else {
                return Err(StoreError::NoSuchVersion(digest.to_string()));
            };
            match target.state {
                VersionState::Active => return Ok(None),
                VersionState::Quarantined => {
                    return Err(StoreError::Quarantined {
                        name: target.name.clone(),
                        version: target.version.clone(),
                        reason: target.state_reason.clone(),
                    });
                }
                VersionState::Inactive => {}
            }
            let replaced = activate_in!(tx, target, at, "rolled back");
            let clock = tx.bump_clock().await?;
            let details = serde_json::json!({
                "replaced": replaced.as_ref().map(|r| &r.digest),
                "registry_clock": clock,
            });
            tx.append_audit(audit(who, "plugin.rollback", &target, details)).await?;
            tx.commit().await?;
            Ok(replaced)
        })
    }

    /// Stops serving plugin `name` (its file was removed): its active
    /// version becomes inactive, with a `plugin.unload` audit entry. The
    /// version unloaded, if one was active.
    pub async fn unload_plugin(
        &self,
        name: &str,
        who: &RegistryActor,
    ) -> Result<Option<PluginVersion>, StoreError> {
        let at = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            tx.lock_chain().await?;
            let Some(active) = tx.active_of(name).await? else {
                return Ok(None);
            };
            tx.set_state(&active.digest, VersionState::Inactive, "unloaded", at).await?;
            let clock = tx.bump_clock().await?;
            let details = serde_json::json!({"registry_clock": clock});
            tx.append_audit(audit(who, "plugin.unload", &active, details)).await?;
            tx.commit().await?;
            Ok(Some(active))
        })
    }

    /// Quarantines the version with `digest` (the circuit breaker tripped):
    /// if it was active, the last version of the same plugin that served
    /// before it and is not quarantined takes over (none: the plugin stops
    /// serving). Writes a `plugin.quarantine` audit entry and puts `alert`
    /// in the outbox, all in one transaction. The version that took over;
    /// `Ok(None)` also when the version was quarantined already.
    pub async fn quarantine_plugin(
        &self,
        digest: &str,
        reason: &str,
        who: &RegistryActor,
        alert: &NewIntent,
    ) -> Result<Option<PluginVersion>, StoreError> {
        let at = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            tx.lock_chain().await?;
            let Some(target) = tx.version_by_digest(digest).await? else {
                return Err(StoreError::NoSuchVersion(digest.to_string()));
            };
            if target.state == VersionState::Quarantined {
                return Ok(None);
            }
            tx.set_state(digest, VersionState::Quarantined, reason, at).await?;
            let mut fallback = None;
            if target.state == VersionState::Active {
                let candidate: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM plugin_versions
                     WHERE name = $1 AND state = 'inactive' AND activated_at > 0
                     ORDER BY activated_at DESC LIMIT 1"
                ))
                .bind(&target.name)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = candidate {
                    let good = version(row)?;
                    tx.set_state(&good.digest, VersionState::Active, "", at).await?;
                    fallback = Some(good);
                }
            }
            let clock = tx.bump_clock().await?;
            let stored = tx.write_intents(&[alert]).await?;
            let details = serde_json::json!({
                "reason": reason,
                "fallback": fallback.as_ref().map(|f| &f.digest),
                "alert": stored.contains(&alert.id).then_some(&alert.id),
                "registry_clock": clock,
            });
            let mut entry = audit(who, "plugin.quarantine", &target, details);
            entry.success = true;
            tx.append_audit(entry).await?;
            tx.commit().await?;
            Ok(fallback)
        })
    }

    /// Releases the quarantined version with `digest`: it becomes inactive,
    /// so a rollback can serve it again. With a `plugin.release` entry.
    pub async fn release_plugin(
        &self,
        digest: &str,
        who: &RegistryActor,
    ) -> Result<PluginVersion, StoreError> {
        let at = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            tx.lock_chain().await?;
            let Some(target) = tx.version_by_digest(digest).await? else {
                return Err(StoreError::NoSuchVersion(digest.to_string()));
            };
            if target.state != VersionState::Quarantined {
                return Err(StoreError::NotQuarantined {
                    name: target.name.clone(),
                    version: target.version.clone(),
                });
            }
            tx.set_state(digest, VersionState::Inactive, "released from quarantine", at)
                .await?;
            let clock = tx.bump_clock().await?;
            let details = serde_json::json!({
                "quarantine_reason": target.state_reason,
                "registry_clock": clock,
            });
            tx.append_audit(audit(who, "plugin.release", &target, details)).await?;
            tx.commit().await?;
            Ok(PluginVersion {
                state: VersionState::Inactive,
                state_reason: "released from quarantine".into(),
                ..target
            })
        })
    }
}
