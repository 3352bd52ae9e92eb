//! The migrations of both backends, embedded in the binary.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `(version, description, sql)` of each migration, in order.
type Embedded = &'static [(i64, &'static str, &'static str)];

const POSTGRES: Embedded = &[
    (
        1,
        "core",
        include_str!("../../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "api",
        include_str!("../../../migrations/postgres/0002_api.sql"),
    ),
    (
        3,
        "lifecycle",
        include_str!("../../../migrations/postgres/0003_lifecycle.sql"),
    ),
    (
        4,
        "score index",
        include_str!("../../../migrations/postgres/0004_score_index.sql"),
    ),
    (
        5,
        "score notify",
        include_str!("../../../migrations/postgres/0005_score_notify.sql"),
    ),
];
const SQLITE: Embedded = &[
    (
        1,
        "core",
        include_str!("../../../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "api",
        include_str!("../../../migrations/sqlite/0002_api.sql"),
    ),
    (
        3,
        "lifecycle",
        include_str!("../../../migrations/sqlite/0003_lifecycle.sql"),
    ),
    (
        4,
        "score index",
        include_str!("../../../migrations/sqlite/0004_score_index.sql"),
    ),
];

/// Migrations compiled into the binary.
#[derive(Debug)]
struct EmbeddedMigrations(Embedded);

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(super) async fn postgres() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(EmbeddedMigrations(POSTGRES)).await
}

pub(super) async fn sqlite() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(EmbeddedMigrations(SQLITE)).await
}
