//! A tenant's lifecycle state, and what each state means for a request.

use std::{fmt, str::FromStr};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Provisioning,
    Active,
    Suspended,
    Migrating,
    MigrationFailed,
    Deleting,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Provisioning,
        Status::Active,
        Status::Suspended,
        Status::Migrating,
        Status::MigrationFailed,
        Status::Deleting,
    ];

    /// Only an active tenant is served; each other status has its own answer.
    pub fn ensure_serving(self) -> crate::error::Result<()> {
        use crate::error::Error;
        match self {
            Status::Active => Ok(()),
            Status::Suspended => Err(Error::TenantSuspended),
            Status::Deleting => Err(Error::TenantNotFound),
            Status::Provisioning | Status::Migrating | Status::MigrationFailed => {
                Err(Error::TenantUnavailable { retry_after: 30 })
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Provisioning => "provisioning",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Migrating => "migrating",
            Status::MigrationFailed => "migration_failed",
            Status::Deleting => "deleting",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_text() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert!("paused".parse::<Status>().is_err());
    }
}
