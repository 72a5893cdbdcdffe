//! The values a statement binds: text, integers and typed nulls (PostgreSQL needs a null's type).

use std::borrow::Cow;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

/// One bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'q> {
    Text(Cow<'q, str>),
    Int(i64),
    /// A null where text is expected.
    NullText,
    /// A null where an integer is expected.
    NullInt,
}

impl<'q> From<&'q str> for Value<'q> {
    fn from(text: &'q str) -> Self {
        Value::Text(Cow::Borrowed(text))
    }
}

impl<'q> From<&'q String> for Value<'q> {
    fn from(text: &'q String) -> Self {
        Value::Text(Cow::Borrowed(text))
    }
}

impl From<String> for Value<'_> {
    fn from(text: String) -> Self {
        Value::Text(Cow::Owned(text))
    }
}

impl From<i64> for Value<'_> {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl<'q> From<Option<&'q str>> for Value<'q> {
    fn from(text: Option<&'q str>) -> Self {
        text.map_or(Value::NullText, Value::from)
    }
}

impl<'q> From<&'q Option<String>> for Value<'q> {
    fn from(text: &'q Option<String>) -> Self {
        text.as_deref().into()
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(number: Option<i64>) -> Self {
        number.map_or(Value::NullInt, Value::Int)
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Int(number) => ValueRef::Integer(*number),
            Value::NullText | Value::NullInt => ValueRef::Null,
        }))
    }
}
