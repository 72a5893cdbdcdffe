//! A row read from a tenant database, read by column name the same way on both backends.

use std::sync::Arc;

use sqlx::{any::AnyRow, Any, Row as _};

use crate::error::{Error, Result};

/// One row of a result.
pub struct Row(Inner);

enum Inner {
    /// Copied out of SQLite; the column names are shared by the rows of one result.
    Local {
        names: Arc<[Box<str>]>,
        cells: Vec<Cell>,
    },
    Server(AnyRow),
}

/// A value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Row {
    pub(super) fn local(names: Arc<[Box<str>]>, cells: Vec<Cell>) -> Self {
        Row(Inner::Local { names, cells })
    }

    pub(super) fn server(row: AnyRow) -> Self {
        Row(Inner::Server(row))
    }

    /// The value of column `name`; a missing column or a value of another type is an internal
    /// error (the statement and the code reading it disagree).
    pub fn try_get<T: Column>(&self, name: &str) -> Result<T> {
        match &self.0 {
            Inner::Local { names, cells } => {
                let cell = names
                    .iter()
                    .position(|column| &**column == name)
                    .map(|at| &cells[at])
                    .ok_or_else(|| internal(format!("no column {name:?} in the row")))?;
                T::from_cell(cell).ok_or_else(|| {
                    internal(format!(
                        "column {name:?} holds {cell:?}, not a {}",
                        std::any::type_name::<T>()
                    ))
                })
            }
            Inner::Server(row) => Ok(row.try_get(name)?),
        }
    }
}

fn internal(message: String) -> Error {
    Error::Internal(anyhow::anyhow!(message))
}

/// A Rust type a column can be read as, on either backend.
pub trait Column: Sized + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {
    /// The value, if `cell` holds this type.
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl Column for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl Column for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(number) => Some(*number),
            _ => None,
        }
    }
}

impl<T: Column> Column for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}
