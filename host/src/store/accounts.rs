//! Reads across accounts (the latest scores, filtered and paged) and the
//! per-account success plan.

use serde::Serialize;
use sqlx::QueryBuilder;

use super::audit::AppendAudit;
use super::{AuditEntry, Store, StoreError};

/// Which latest scores to list.
#[derive(Debug, Clone, Default)]
pub struct ScoreFilter {
    /// The score's name (`health`, `lead`, …).
    pub name: String,
    /// Only this band.
    pub band: Option<String>,
    /// Only accounts of this tier (wire name).
    pub tier: Option<String>,
    /// Only accounts of this industry (wire name).
    pub industry: Option<String>,
}

/// One account's latest score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    /// The account.
    pub account_id: String,
    /// The score's name.
    pub name: String,
    /// 0 to 100.
    pub value: f64,
    /// Its band.
    pub band: String,
    /// The account's tier.
    pub tier: String,
    /// The account's industry.
    pub industry: String,
    /// When it was computed (evaluation time).
    pub computed_at: i64,
    /// Whether its scorer failed since.
    pub stale: bool,
}

/// A success plan as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuccessPlan {
    /// The account.
    pub account_id: String,
    /// The plan, JSON.
    pub plan: serde_json::Value,
    /// 1 for the first plan, one more for each replacement.
    pub version: i64,
    /// When it was last replaced.
    pub updated_at: i64,
    /// Who replaced it.
    pub updated_by: String,
}

impl Store {
    /// Up to `limit` latest scores matching `filter`, by account id after
    /// `after` (a cursor: the last account id of the previous page).
    pub async fn latest_scores(
        &self,
        filter: &ScoreFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScoreRow>, StoreError> {
        type Row = (String, String, f64, String, String, String, i64, bool);
        let rows: Vec<Row> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT s.account_id, s.name, s.value, s.band, a.tier, a.industry, s.computed_at, s.stale
                 FROM latest_scores s JOIN accounts a ON a.id = s.account_id WHERE s.name = ",
            );
            query.push_bind(&filter.name);
            if let Some(band) = &filter.band {
                query.push(" AND s.band = ").push_bind(band);
            }
            if let Some(tier) = &filter.tier {
                query.push(" AND a.tier = ").push_bind(tier);
            }
            if let Some(industry) = &filter.industry {
                query.push(" AND a.industry = ").push_bind(industry);
            }
            if let Some(after) = after {
                query.push(" AND s.account_id > ").push_bind(after);
            }
            query.push(" ORDER BY s.account_id LIMIT ").push_bind(limit);
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(account_id, name, value, band, tier, industry, computed_at, stale)| ScoreRow {
                    account_id,
                    name,
                    value,
                    band,
                    tier,
                    industry,
                    computed_at,
                    stale,
                },
            )
            .collect())
    }

    /// Replaces an account's success plan, with its audit entry; returns
    /// the stored plan.
    pub async fn put_success_plan(
        &self,
        account_id: &str,
        plan: &serde_json::Value,
        audit: AuditEntry,
    ) -> Result<SuccessPlan, StoreError> {
        let text = plan.to_string();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (version,): (i64,) = sqlx::query_as(
                "INSERT INTO success_plans (account_id, plan, version, updated_at, updated_by)
                 VALUES ($1, $2, 1, $3, $4)
                 ON CONFLICT (account_id) DO UPDATE SET plan = excluded.plan,
                     version = success_plans.version + 1, updated_at = excluded.updated_at,
                     updated_by = excluded.updated_by
                 RETURNING version",
            )
            .bind(account_id)
            .bind(&text)
            .bind(audit.at)
            .bind(&audit.actor)
            .fetch_one(&mut *tx)
            .await?;
            let mut audit = audit;
            audit.details["version"] = serde_json::json!(version);
            let updated_by = audit.actor.clone();
            let updated_at = audit.at;
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(SuccessPlan {
                account_id: account_id.to_string(),
                plan: plan.clone(),
                version,
                updated_at,
                updated_by,
            })
        })
    }

    /// An account's success plan, if it has one.
    pub async fn success_plan(&self, account_id: &str) -> Result<Option<SuccessPlan>, StoreError> {
        let row: Option<(String, i64, i64, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT plan, version, updated_at, updated_by FROM success_plans WHERE account_id = $1",
            )
            .bind(account_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(plan, version, updated_at, updated_by)| {
            Ok(SuccessPlan {
                account_id: account_id.to_string(),
                plan: serde_json::from_str(&plan).map_err(|e| StoreError::Corrupt {
                    what: "success plan",
                    reason: e.to_string(),
                })?,
                version,
                updated_at,
                updated_by,
            })
        })
        .transpose()
    }
}
