//! Rows as the tables hold them: a struct per table whose fields are its
//! columns ([`table_row!`]), and the statements made from that one list —
//! the `SELECT` of every column, and the `INSERT` of many rows at once, so
//! that a batch pays the round trip to the database once. A column is named
//! once, as a field; where it goes in a statement, and which value is bound
//! to it, follows from that name, never from a position kept by hand.
//!
//! The statements are made here rather than with sqlx's `QueryBuilder`:
//! through the `Any` driver, `QueryBuilder::push_values` writes `?`
//! placeholders, which PostgreSQL does not accept (sqlx issue 3000); these
//! number theirs (`$1`, `$2`, …), which both backends accept.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, AssertSqlSafe, Executor, FromRow};

use crate::problem::Result;

/// A row of a table, as written and read. Implemented by [`table_row!`].
pub(super) trait TableRow {
    const TABLE: &'static str;
    /// The columns, in the order [`TableRow::add_values`] adds their values.
    const COLUMNS: &'static [&'static str];
    /// `SELECT <every column> FROM <table>`, for a `WHERE` to follow.
    const SELECT: &'static str;
    fn add_values(&self, arguments: &mut AnyArguments) -> Result<()>;
}

/// Declares `struct $row` with the columns of `$table` as its fields, and
/// its [`TableRow`]: the column list, the `SELECT` and the binding, all from
/// the one list of fields. Attributes (derives, doc comments) pass through.
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $row:ident in $table:literal {
            $(#[$first_meta:meta])* $first:ident: $first_type:ty
            $(, $(#[$field_meta:meta])* $field:ident: $type:ty)* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $row {
            $(#[$first_meta])* $first: $first_type,
            $($(#[$field_meta])* $field: $type,)*
        }

        impl $crate::store::rows::TableRow for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[stringify!($first) $(, stringify!($field))*];
            const SELECT: &'static str = concat!(
                "SELECT ", stringify!($first) $(, ", ", stringify!($field))*, " FROM ", $table
            );
            fn add_values(
                &self,
                arguments: &mut sqlx::any::AnyArguments,
            ) -> $crate::problem::Result<()> {
                use sqlx::Arguments as _;
                arguments.add(&self.$first).map_err(sqlx::Error::Encode)?;
                $(arguments.add(&self.$field).map_err(sqlx::Error::Encode)?;)*
                Ok(())
            }
        }
    };
}
pub(super) use table_row;

/// `INSERT INTO <table> (<columns>) VALUES (…), (…)` of some rows, with
/// their values bound, and what follows the values.
pub(super) struct Insert {
    sql: String,
    arguments: AnyArguments,
    columns: &'static [&'static str],
    rows: usize,
}

impl Insert {
    pub(super) fn rows<'r, R: TableRow + 'r>(
        rows: impl IntoIterator<Item = &'r R>,
    ) -> Result<Self> {
        let mut insert = Insert {
            sql: String::new(),
            arguments: AnyArguments::default(),
            columns: R::COLUMNS,
            rows: 0,
        };
        insert.push(rows)?;
        Ok(insert)
    }

    /// Follows this statement with the `INSERT` of rows of another table,
    /// their placeholders numbered on from this one's: several statements
    /// sent, and run, in one round trip. Only SQLite runs several statements
    /// with bound values in one go; PostgreSQL's prepared statements hold one.
    /// Each statement must have rows: one without would be invalid SQL.
    pub(super) fn and<'r, R: TableRow + 'r>(
        mut self,
        rows: impl IntoIterator<Item = &'r R>,
    ) -> Result<Self> {
        self.sql.push_str("; ");
        self.columns = R::COLUMNS;
        self.push(rows)?;
        Ok(self)
    }

    fn push<'r, R: TableRow + 'r>(&mut self, rows: impl IntoIterator<Item = &'r R>) -> Result<()> {
        self.sql.push_str(&format!(
            "INSERT INTO {} ({}) VALUES ",
            R::TABLE,
            R::COLUMNS.join(", ")
        ));
        for (n, row) in rows.into_iter().enumerate() {
            let first = self.arguments.len() + 1;
            row.add_values(&mut self.arguments)?;
            let placeholders: Vec<String> = (first..=self.arguments.len())
                .map(|n| format!("${n}"))
                .collect();
            if n > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push_str(&format!("({})", placeholders.join(", ")));
            self.rows += 1;
        }
        Ok(())
    }

    /// Adds SQL after the values (`ON CONFLICT …`, `RETURNING …`).
    pub(super) fn then(mut self, sql: &'static str) -> Self {
        self.sql.push(' ');
        self.sql.push_str(sql);
        self
    }

    /// When a row's `key` is taken, updates that row's other columns, but
    /// those in `kept`, to the new values.
    pub(super) fn or_update(mut self, key: &'static str, kept: &[&str]) -> Self {
        let set: Vec<String> = self
            .columns
            .iter()
            .filter(|column| **column != key && !kept.contains(column))
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        self.sql.push_str(&format!(
            " ON CONFLICT ({key}) DO UPDATE SET {}",
            set.join(", ")
        ));
        self
    }

    /// Runs the statement; without rows, there is nothing to run.
    pub(super) async fn execute<'c, E: Executor<'c, Database = Any>>(self, on: E) -> Result<()> {
        if self.rows > 0 {
            sqlx::query_with(AssertSqlSafe(self.sql), self.arguments)
                .execute(on)
                .await?;
        }
        Ok(())
    }

    /// Runs the statement and reads what its `RETURNING` returns.
    pub(super) async fn fetch_all<'c, T, E>(self, on: E) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
        E: Executor<'c, Database = Any>,
    {
        if self.rows == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as_with(AssertSqlSafe(self.sql), self.arguments)
            .fetch_all(on)
            .await?)
    }
}
