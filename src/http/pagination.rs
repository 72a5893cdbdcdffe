//! Cursor pagination shared by every list: `?limit=` 1–100 (default 50) and an opaque `?cursor=`
//! (the last id of the previous page; ids are UUID v7, so id order is creation order).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, Result};

/// The raw query, parsed by [`PageQuery::parse`] so bad values get `422` with the field named.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    /// Rows strictly after this id (in the list's order), or from the start.
    pub after: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest> {
        let limit = match self.limit.as_deref() {
            None => 50,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(Error::field(
                        "limit",
                        "must be a whole number from 1 to 100",
                    ))
                }
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => match uuid::Uuid::parse_str(raw) {
                Ok(id) => Some(id.hyphenated().to_string()),
                Err(_) => {
                    return Err(Error::field(
                        "cursor",
                        "is not a cursor from a previous page",
                    ))
                }
            },
        };
        Ok(PageRequest { limit, after })
    }
}

/// `{data, next_cursor}`; `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id_of) } else { None };
        Page {
            data: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(Into::into),
            cursor: cursor.map(Into::into),
        }
    }

    #[test]
    fn limit_defaults_to_50_and_stays_within_1_to_100() {
        assert_eq!(query(None, None).parse().unwrap().limit, 50);
        assert_eq!(query(Some("100"), None).parse().unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert!(query(Some(bad), None).parse().is_err(), "{bad}");
        }
    }

    #[test]
    fn cursor_must_be_an_id() {
        assert!(query(None, Some("nope")).parse().is_err());
        assert!(query(None, Some("' OR 1=1 --")).parse().is_err());
        let id = uuid::Uuid::now_v7().to_string();
        assert_eq!(query(None, Some(&id)).parse().unwrap().after, Some(id));
    }

    #[test]
    fn next_cursor_appears_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(
            (page.data, page.next_cursor),
            (vec![1, 2], Some("2".to_owned()))
        );
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
