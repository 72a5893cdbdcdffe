//! A tenant as the registry holds it, and as the admin API and CLI show it.

use serde::Serialize;

use super::{Slug, Status, TenantId};
use crate::clock;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TenantRecord {
    #[schema(value_type = String)]
    pub id: TenantId,
    #[schema(value_type = String)]
    pub slug: Slug,
    pub name: String,
    pub plan: String,
    pub status: Status,
    /// Name of the configured server holding the database.
    pub server: String,
    /// The database name (PostgreSQL) or file name (SQLite) on that server.
    pub database: String,
    pub schema_version: i64,
    pub domains: Vec<String>,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Which derivation of the master key the tenant's database credentials use (PostgreSQL
    /// roles); kept in the registry, not shown.
    #[serde(skip)]
    #[schema(ignore)]
    pub credentials_version: i64,
    /// The id of the master key that derivation is under (see `secrets`); empty on a row from
    /// before key ids were recorded, which means the current key. Not shown.
    #[serde(skip)]
    #[schema(ignore)]
    pub credentials_key: String,
    /// Why the last provisioning or migration step failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
