//! Multi-row inserts: one statement for many rows, so that a batch pays the
//! round trip to the database once.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::problem::Result;

/// One value of a row to insert.
#[derive(Debug, Clone)]
pub(super) enum Bind {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
}

pub(super) type Row = Vec<Bind>;

/// Runs `<head> ($1, …), ($k, …) <tail>` with `rows` bound in order, and
/// returns what the statement returns (for a `RETURNING` tail). Only
/// placeholders are added to the SQL, never values.
pub(super) async fn insert_rows(
    conn: &mut AnyConnection,
    head: &'static str,
    rows: &[Row],
    tail: &'static str,
) -> Result<Vec<AnyRow>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from(head);
    let mut n = 0;
    for (i, row) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { " (" } else { ", (" });
        for j in 0..row.len() {
            n += 1;
            sql.push_str(&if j == 0 {
                format!("${n}")
            } else {
                format!(", ${n}")
            });
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in rows.iter().flatten() {
        query = match value {
            Bind::Text(text) => query.bind(text.clone()),
            Bind::MaybeText(text) => query.bind(text.clone()),
            Bind::Int(int) => query.bind(*int),
        };
    }
    Ok(query.fetch_all(conn).await?)
}
