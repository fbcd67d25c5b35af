//! The customer's own tables (DESIGN §9), read only: `workers` and `transactions`. A database
//! without them (a plain Postgres for the local layout) is a normal case: `None`.

use std::collections::HashSet;

use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::{Store, StoreError};
use pipeline::source::RosterEntry;

/// SQLSTATE 42P01: the table does not exist.
fn missing_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

impl Store {
    /// The rows of a query on one of the customer's tables; `None` when the table is absent.
    async fn customer_rows(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Option<Vec<Row>>, StoreError> {
        match self.pool.get().await?.query_typed(sql, params).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if missing_table(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The location's workers from `workers`, by name; `None` when there is no such table.
    pub async fn roster(&self, location: &str) -> Result<Option<Vec<RosterEntry>>, StoreError> {
        let Some(rows) = self
            .customer_rows(
                "SELECT id::text AS id, name::text AS name FROM workers
                 WHERE location_id = $1::uuid ORDER BY name, id",
                &[(&location, Type::TEXT)],
            )
            .await?
        else {
            return Ok(None);
        };
        rows.iter()
            .map(|r| {
                Ok(RosterEntry {
                    id: r.try_get("id")?,
                    name: r.try_get::<_, Option<String>>("name")?.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Some)
    }

    /// Of `ids`, those that are transactions of the location; `None` when there is no such table.
    pub async fn known_transactions(
        &self,
        location: &str,
        ids: &[String],
    ) -> Result<Option<HashSet<String>>, StoreError> {
        let Some(rows) = self
            .customer_rows(
                "SELECT id::text AS id FROM transactions
                 WHERE location_id = $1::uuid AND id::text = ANY($2)",
                &[(&location, Type::TEXT), (&ids, Type::TEXT_ARRAY)],
            )
            .await?
        else {
            return Ok(None);
        };
        rows.iter()
            .map(|r| r.try_get::<_, String>("id").map_err(StoreError::from))
            .collect::<Result<HashSet<_>, _>>()
            .map(Some)
    }
}
