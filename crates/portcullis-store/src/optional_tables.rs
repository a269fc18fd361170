//! Reading tables that may not exist in every store (for reports): whether a table is
//! there, and its rows of a period as text, whatever its columns.

use crate::{Result, Store, StoreError};
use std::collections::BTreeMap;

/// One row: column name -> value as text (`None` for NULL).
pub type TextRow = BTreeMap<String, Option<String>>;

impl Store {
    /// The rows of `table` with `at` in `[from, to)` (every row when the table has no
    /// `at` column), oldest first, at most `max`, each column cast to text; `None` when
    /// the table does not exist. `table` must be a plain identifier.
    pub async fn rows_between(
        &self,
        table: &str,
        from: i64,
        to: i64,
        max: u32,
    ) -> Result<Option<Vec<TextRow>>> {
        if table.is_empty() || !table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StoreError::Invalid(format!(
                "`{table}` is not a table name"
            )));
        }
        let columns: Vec<String> = match self.backend {
            crate::Backend::Sqlite(ref pool) => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(pool)
                    .await?
            }
            crate::Backend::Postgres(ref pool) => {
                sqlx::query_scalar(
                    "SELECT column_name::TEXT FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = current_schema() \
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(pool)
                .await?
            }
        };
        if columns.is_empty() {
            return Ok(None);
        }
        let safe = |c: &String| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let columns: Vec<String> = columns.into_iter().filter(safe).collect();
        let select = columns
            .iter()
            .map(|c| format!("CAST({c} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ");
        let has_at = columns.iter().any(|c| c == "at");
        let (filter, order) = if has_at {
            (" WHERE at >= $1 AND at < $2", "at")
        } else {
            ("", "1")
        };
        let sql = format!("SELECT {select} FROM {table}{filter} ORDER BY {order} LIMIT {max}");
        let rows: Vec<TextRow> = with_pool!(self, pool => {
            let mut query = sqlx::query(&sql);
            if has_at {
                query = query.bind(from).bind(to);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            sqlx::Row::try_get::<Option<String>, _>(row, i)
                                .map(|v| (c.clone(), v))
                        })
                        .collect::<std::result::Result<TextRow, _>>()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
        });
        Ok(Some(rows))
    }
}
