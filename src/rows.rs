//! Rows from D1 and from an object's SQLite, read by column position. Every query names
//! its columns, so a position is as safe as a name; reading arrays instead of decoding
//! objects through serde keeps a generated decoder per row type out of the bundle (about
//! 10 KiB gzipped for the service's row types) and crosses into wasm once per value.

use crate::error::{ApiError, ApiResult, OrInternal};
use wasm_bindgen::JsCast;
use worker::{D1PreparedStatement, SqlCursor, SqlStorageValue as Value};

pub struct Row(Vec<Value>);

impl Row {
    pub fn new(values: Vec<Value>) -> Self {
        Row(values)
    }

    fn at(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    fn wrong(i: usize, what: &str) -> ApiError {
        ApiError::Internal(format!("column {i} of a stored row is not {what}"))
    }

    pub fn opt_int(&self, i: usize) -> ApiResult<Option<i64>> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Integer(n) => Ok(Some(*n)),
            Value::Boolean(b) => Ok(Some(i64::from(*b))),
            _ => Err(Row::wrong(i, "an integer")),
        }
    }

    pub fn int(&self, i: usize) -> ApiResult<i64> {
        self.opt_int(i)?.ok_or_else(|| Row::wrong(i, "an integer"))
    }

    pub fn opt_uint(&self, i: usize) -> ApiResult<Option<u64>> {
        self.opt_int(i)?
            .map(|n| u64::try_from(n).map_err(|_| Row::wrong(i, "a count")))
            .transpose()
    }

    pub fn uint(&self, i: usize) -> ApiResult<u64> {
        self.opt_uint(i)?.ok_or_else(|| Row::wrong(i, "a count"))
    }

    pub fn flag(&self, i: usize) -> ApiResult<bool> {
        Ok(self.int(i)? != 0)
    }

    /// Takes a text column out of the row.
    pub fn opt_text(&mut self, i: usize) -> ApiResult<Option<String>> {
        match self.0.get_mut(i) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(std::mem::take(s))),
            Some(_) => Err(Row::wrong(i, "text")),
        }
    }

    pub fn text(&mut self, i: usize) -> ApiResult<String> {
        self.opt_text(i)?.ok_or_else(|| Row::wrong(i, "text"))
    }
}

/// Every row of an object's SQLite query.
pub fn sql(cursor: worker::Result<SqlCursor>, what: &'static str) -> ApiResult<Vec<Row>> {
    let mut rows = Vec::new();
    for row in cursor.or_internal(what)?.raw() {
        rows.push(Row(row.or_internal(what)?));
    }
    Ok(rows)
}

/// Each row turned into a domain value by `f`. A plain loop: collecting `Result`s
/// instantiates the standard library's adapters once per row type.
pub fn each<T>(rows: Vec<Row>, mut f: impl FnMut(Row) -> ApiResult<T>) -> ApiResult<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(f(row)?);
    }
    Ok(out)
}

/// The first row of an object's SQLite query, if any.
pub fn sql_first(cursor: worker::Result<SqlCursor>, what: &'static str) -> ApiResult<Option<Row>> {
    Ok(sql(cursor, what)?.into_iter().next())
}

/// Every row of a D1 query.
pub async fn d1(statement: D1PreparedStatement, what: &'static str) -> ApiResult<Vec<Row>> {
    let rows = statement.raw_js_value().await.or_internal(what)?;
    rows.into_iter()
        .map(|row| {
            let row: worker::js_sys::Array =
                row.dyn_into().map_err(|_| ApiError::internal(what))?;
            row.iter()
                .map(Value::try_from)
                .collect::<worker::Result<Vec<_>>>()
                .map(Row)
                .or_internal(what)
        })
        .collect()
}

/// The first row of a D1 query, if any.
pub async fn d1_first(
    statement: D1PreparedStatement,
    what: &'static str,
) -> ApiResult<Option<Row>> {
    Ok(d1(statement, what).await?.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_by_position_and_type() {
        let mut row = Row::new(vec![
            Value::Integer(-3),
            Value::String("x".into()),
            Value::Null,
            Value::Boolean(true),
            Value::Float(1.5),
        ]);
        assert_eq!(row.int(0).unwrap(), -3);
        assert!(row.uint(0).is_err());
        assert_eq!(row.text(1).unwrap(), "x");
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert_eq!(row.opt_int(2).unwrap(), None);
        assert!(row.int(2).is_err());
        assert!(row.flag(3).unwrap());
        assert!(row.int(4).is_err());
        assert!(row.text(0).is_err());
        assert_eq!(row.opt_int(9).unwrap(), None);
    }
}
