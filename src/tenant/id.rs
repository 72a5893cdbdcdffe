//! A tenant's immutable id: a UUID v7, shown in lower-case text.

use std::{fmt, str::FromStr};

use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// A buffer for [`TenantId::encode`].
    pub fn encode_buffer() -> [u8; uuid::fmt::Hyphenated::LENGTH] {
        [0; uuid::fmt::Hyphenated::LENGTH]
    }

    /// The id's text (as `Display` writes it) in `buffer`, without allocating.
    pub fn encode(self, buffer: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
        self.0.hyphenated().encode_lower(buffer)
    }

    /// A short form for names that must stay brief (database roles), unique enough per server.
    pub fn short(&self) -> String {
        self.0.simple().to_string()
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lower_case_and_round_trip() {
        let id = TenantId::new();
        let text = id.to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<TenantId>().unwrap(), id);
    }

    #[test]
    fn encoded_ids_are_their_display() {
        let id = TenantId::new();
        assert_eq!(id.encode(&mut TenantId::encode_buffer()), id.to_string());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let a = TenantId::new();
        let b = TenantId::new();
        assert!(a.to_string() < b.to_string());
    }
}
