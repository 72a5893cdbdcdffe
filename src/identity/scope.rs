//! API token scopes. Each allows exactly what it names: `write` does not imply `read`.

use std::{fmt, str::FromStr};

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "projects:read")]
    ProjectsRead,
    #[serde(rename = "projects:write")]
    ProjectsWrite,
    #[serde(rename = "members:read")]
    MembersRead,
    #[serde(rename = "members:write")]
    MembersWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
        Scope::MembersRead,
        Scope::MembersWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProjectsRead => "projects:read",
            Scope::ProjectsWrite => "projects:write",
            Scope::MembersRead => "members:read",
            Scope::MembersWrite => "members:write",
        }
    }

    /// Parses a space-separated list as stored in the database; unknown words are dropped.
    pub fn parse_stored(stored: &str) -> Vec<Scope> {
        stored
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The stored form of a list.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?} (projects:read, projects:write, members:read, members:write)"))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_refused() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("projects:*".parse::<Scope>().is_err());
        assert!("admin".parse::<Scope>().is_err());
        assert_eq!(
            Scope::parse_stored(&Scope::join(&Scope::ALL)),
            Scope::ALL.to_vec()
        );
    }
}
