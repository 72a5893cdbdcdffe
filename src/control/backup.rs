//! Backups, restores and clones: `silo tenant backup | restore`, `silo tenant create --from`,
//! `POST /admin/v1/tenants/{slug}/backup | restore`.
//!
//! A backup is a [`snapshot`](super::snapshot) of the tenant's database, taken online in one
//! consistent read, written as JSON lines that name what they are (`silo.tenant-backup`) and
//! end with a line carrying the row count and a SHA-256 of every line before it, so a
//! truncated or edited file is refused before anything is touched. The same file restores on
//! either backend.
//!
//! A restore into the tenant the backup was taken of replaces all of its data in one
//! transaction, and only while the tenant is suspended (nobody is served half a restore). A
//! restore under a slug nobody has, and a clone, provision a new tenant (its own id, role and
//! keys) whose database starts as the copy, without the source's sessions, API tokens or
//! pending invitations.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    lifecycle,
    provision::{provision, Contents, IfExists, ProvisionRequest},
    runs,
    snapshot::{self, Column, Dialect, Kind, Table},
};
use crate::{
    audit,
    backend::ControlRole,
    clock,
    error::{Error, Result},
    state::AppState,
    tenant::{Slug, Status, TenantId, TenantRecord},
};

/// The first line's `format`.
pub const FORMAT: &str = "silo.tenant-backup";
pub const FORMAT_VERSION: u32 = 1;

/// Which tenant a backup was taken of, as its first line says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupOf {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub schema_version: i64,
}

/// A tenant's database at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub tenant: BackupOf,
    /// Milliseconds since the epoch.
    pub taken_at: i64,
    pub tables: Vec<Table>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    tenant: BackupOf,
    taken_at: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableLine {
    table: String,
    columns: Vec<ColumnLine>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnLine {
    name: String,
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: End,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    tables: usize,
    rows: usize,
    sha256: String,
}

impl Backup {
    /// The file: a header line, each table's line followed by its rows (a JSON array each),
    /// then the end line. Every line ends with a newline.
    pub fn to_file(&self) -> String {
        let header = Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            tenant: self.tenant.clone(),
            taken_at: clock::rfc3339(self.taken_at),
        };
        let mut text = String::new();
        let mut line = |value: String| {
            text.push_str(&value);
            text.push('\n');
        };
        line(serde_json::to_string(&header).unwrap_or_default());
        for table in &self.tables {
            let columns = table
                .columns
                .iter()
                .map(|c| ColumnLine {
                    name: c.name.clone(),
                    kind: c.kind.as_str().into(),
                })
                .collect();
            line(
                serde_json::to_string(&TableLine {
                    table: table.name.clone(),
                    columns,
                })
                .unwrap_or_default(),
            );
            for row in &table.rows {
                line(Value::Array(row.clone()).to_string());
            }
        }
        let end = EndLine {
            end: End {
                tables: self.tables.len(),
                rows: snapshot::row_count(&self.tables),
                sha256: hex::encode(Sha256::digest(text.as_bytes())),
            },
        };
        text.push_str(&serde_json::to_string(&end).unwrap_or_default());
        text.push('\n');
        text
    }

    /// Reads a backup file back, checking everything before anything is used: the format and
    /// its version, each line's shape, and that the end line's counts and SHA-256 match (so a
    /// truncated, edited or foreign file is `400 bad_request`, saying which line is wrong).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |line: usize, why: String| {
            Error::BadRequest(format!("the backup file is not valid: line {line}: {why}"))
        };
        let mut lines = text.split_inclusive('\n').enumerate();
        let mut hashed = Sha256::new();
        let (_, first) = lines
            .next()
            .ok_or_else(|| bad(1, "the file is empty".into()))?;
        hashed.update(first.as_bytes());
        let header: Header = serde_json::from_str(first)
            .map_err(|e| bad(1, format!("not a silo backup header ({e})")))?;
        if header.format != FORMAT {
            return Err(bad(
                1,
                format!("format {:?}, not {FORMAT:?}", header.format),
            ));
        }
        if header.version != FORMAT_VERSION {
            return Err(bad(
                1,
                format!(
                    "format version {}, and this silo reads {FORMAT_VERSION}",
                    header.version
                ),
            ));
        }
        let taken_at = time::OffsetDateTime::parse(
            &header.taken_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| bad(1, format!("taken_at is not an RFC 3339 time ({e})")))?;
        let mut tables: Vec<Table> = Vec::new();
        while let Some((index, line)) = lines.next() {
            let number = index + 1;
            if !line.ends_with('\n') {
                return Err(bad(number, "the file ends part-way through a line".into()));
            }
            let value: Value =
                serde_json::from_str(line).map_err(|e| bad(number, format!("not JSON ({e})")))?;
            match value {
                Value::Array(row) => {
                    let table = tables
                        .last_mut()
                        .ok_or_else(|| bad(number, "a row before any table line".into()))?;
                    if row.len() != table.columns.len() {
                        return Err(bad(
                            number,
                            format!(
                                "a row of {} values in table {}, which has {} columns",
                                row.len(),
                                table.name,
                                table.columns.len()
                            ),
                        ));
                    }
                    table.rows.push(row);
                    hashed.update(line.as_bytes());
                }
                Value::Object(ref object) if object.contains_key("end") => {
                    let end: EndLine = serde_json::from_value(value)
                        .map_err(|e| bad(number, format!("not an end line ({e})")))?;
                    let digest = hex::encode(std::mem::take(&mut hashed).finalize());
                    let rows = snapshot::row_count(&tables);
                    if end.end.sha256 != digest
                        || end.end.rows != rows
                        || end.end.tables != tables.len()
                    {
                        return Err(bad(
                            number,
                            "the file does not match its own checksum: it was cut short or changed"
                                .into(),
                        ));
                    }
                    if let Some((after, _)) = lines.next() {
                        return Err(bad(after + 1, "lines after the end line".into()));
                    }
                    return Ok(Backup {
                        tenant: header.tenant,
                        taken_at: (taken_at.unix_timestamp_nanos() / 1_000_000) as i64,
                        tables,
                    });
                }
                Value::Object(_) => {
                    let table: TableLine = serde_json::from_value(value)
                        .map_err(|e| bad(number, format!("not a table line ({e})")))?;
                    let columns = table
                        .columns
                        .into_iter()
                        .map(|c| {
                            let kind = Kind::parse(&c.kind).ok_or_else(|| {
                                bad(number, format!("column {} has kind {:?}", c.name, c.kind))
                            })?;
                            Ok(Column { name: c.name, kind })
                        })
                        .collect::<Result<_>>()?;
                    if tables.iter().any(|t| t.name == table.table) {
                        return Err(bad(number, format!("table {} twice", table.table)));
                    }
                    tables.push(Table {
                        name: table.table,
                        columns,
                        rows: Vec::new(),
                    });
                    hashed.update(line.as_bytes());
                }
                _ => return Err(bad(number, "neither a table line nor a row".into())),
            }
        }
        Err(Error::BadRequest(
            "the backup file is not valid: it has no end line, so it was cut short".into(),
        ))
    }
}

/// Statuses whose database is whole and still there: it can be read for a backup or a clone.
fn readable(status: Status) -> bool {
    matches!(
        status,
        Status::Active | Status::Suspended | Status::MigrationFailed
    )
}

/// The tenant's database, read in one snapshot as the server's admin role (not one of the
/// tenant role's own connections, which its pool may be using), within the server's budget.
async fn read_tenant(state: &AppState, tenant: &TenantRecord) -> Result<Vec<Table>> {
    let server = state.servers.of(tenant)?;
    let _room = state.pools.reserve_for_control(tenant, 1).await?;
    let pool = server.connect_control(tenant, ControlRole::Admin).await?;
    let tables = snapshot::take(&pool, Dialect::of(server)).await;
    pool.close().await;
    tables
}

/// A backup of tenant `slug`, taken online; recorded as a run, and in the tenant's audit log.
pub async fn backup(state: &AppState, slug: &str) -> Result<Backup> {
    let tenant = lifecycle::find(state, slug).await?;
    if !readable(tenant.status) {
        return Err(Error::Conflict(format!(
            "the tenant is {}; a backup needs its database whole",
            tenant.status
        )));
    }
    runs::recorded(
        state,
        "backup",
        tenant.id,
        tenant.slug.as_str(),
        json!({}),
        async {
            let tables = read_tenant(state, &tenant).await?;
            let backup = Backup {
                tenant: BackupOf {
                    id: tenant.id.to_string(),
                    slug: tenant.slug.to_string(),
                    name: tenant.name.clone(),
                    plan: tenant.plan.clone(),
                    schema_version: tenant.schema_version,
                },
                taken_at: clock::now_ms(),
                tables,
            };
            let rows = snapshot::row_count(&backup.tables);
            audit::note_operator_action(
                state,
                &tenant,
                "tenant.backed_up",
                json!({ "rows": rows }),
            )
            .await;
            Ok((backup, json!({ "rows": rows })))
        },
    )
    .await
}

/// Restores `backup` into tenant `slug`: the tenant it was taken of, suspended (its data is
/// replaced whole; it stays suspended for the operator to look before resuming it), or a slug
/// nobody has (a new tenant, its own id, role and keys, from the backup's rows).
pub async fn restore(state: &AppState, slug: &str, backup: Backup) -> Result<TenantRecord> {
    let shape = Slug::parse_shape(slug).map_err(|_| Error::field("slug", "not a valid slug"))?;
    match state.registry.load(&shape).await? {
        Some(tenant) => restore_in_place(state, tenant, backup).await,
        None => {
            let request = ProvisionRequest {
                slug: slug.to_owned(),
                name: Some(backup.tenant.name.clone()),
                plan: Some(backup.tenant.plan.clone()),
                ..ProvisionRequest::default()
            };
            let asked = json!({
                "from_backup_of": backup.tenant.slug,
                "taken_at": clock::rfc3339(backup.taken_at),
            });
            copy_into_new(
                state,
                request,
                "restore",
                asked,
                backup.tables,
                IfExists::Conflict,
            )
            .await
        }
    }
}

async fn restore_in_place(
    state: &AppState,
    tenant: TenantRecord,
    backup: Backup,
) -> Result<TenantRecord> {
    if backup.tenant.id != tenant.id.to_string() {
        return Err(Error::Conflict(format!(
            "the backup is of tenant {} ({}), not of {}; restore it under a slug nobody has instead",
            backup.tenant.slug, backup.tenant.id, tenant.slug
        )));
    }
    if tenant.status != Status::Suspended {
        return Err(Error::Conflict(format!(
            "the tenant is {}; suspend it first: a restore replaces all of its data",
            tenant.status
        )));
    }
    if backup.tenant.schema_version > tenant.schema_version {
        return Err(Error::Conflict(format!(
            "the backup is at schema version {}, newer than the tenant's {}; migrate the tenant first",
            backup.tenant.schema_version, tenant.schema_version
        )));
    }
    let asked = json!({
        "from_backup_of": backup.tenant.slug,
        "taken_at": clock::rfc3339(backup.taken_at),
    });
    runs::recorded(
        state,
        "restore",
        tenant.id,
        tenant.slug.as_str(),
        asked,
        async {
            let server = state.servers.of(&tenant)?;
            // The build lock's session and the load's own connection.
            let _room = state
                .pools
                .reserve_for_control(&tenant, server.provisioning_connections())
                .await?;
            let _lock = server.lock_build(&tenant).await?;
            // Resumed or deleted meanwhile: not restored.
            let now = lifecycle::find(state, tenant.slug.as_str()).await?;
            if now.id != tenant.id || now.status != Status::Suspended {
                return Err(Error::Conflict(format!(
                    "the tenant is {} now; suspend it first: a restore replaces all of its data",
                    now.status
                )));
            }
            if now.server != tenant.server || now.database != tenant.database {
                return Err(Error::Conflict(format!(
                    "tenant {} moved to server {} meanwhile; restore again",
                    tenant.slug, now.server
                )));
            }
            // No connection of this router's pool sees the data change under it.
            state.pools.evict(tenant.id).await;
            let pool = server.connect_control(&tenant, ControlRole::Tenant).await?;
            let loaded = snapshot::replace(&pool, Dialect::of(server), &backup.tables).await;
            pool.close().await;
            loaded?;
            let rows = snapshot::row_count(&backup.tables);
            audit::note_operator_action(
                state,
                &tenant,
                "tenant.restored",
                json!({ "rows": rows, "taken_at": clock::rfc3339(backup.taken_at) }),
            )
            .await;
            Ok((now, json!({ "rows": rows })))
        },
    )
    .await
}

/// `silo tenant create <new> --from <slug>`: a new tenant whose database starts as a copy of
/// `from`'s, read online in one snapshot.
pub async fn clone_tenant(
    state: &AppState,
    request: ProvisionRequest,
    from: &str,
    if_exists: IfExists,
) -> Result<TenantRecord> {
    let source = lifecycle::find(state, from)
        .await
        .map_err(|error| match error {
            Error::NotFound(_) => Error::field("from", format!("no tenant has slug {from:?}")),
            other => other,
        })?;
    if !readable(source.status) {
        return Err(Error::Conflict(format!(
            "tenant {} is {}; a clone needs its database whole",
            source.slug, source.status
        )));
    }
    if request.owner.is_some() {
        return Err(Error::field(
            "owner_email",
            "a clone's users are its source's; add an owner after it is made",
        ));
    }
    let request = ProvisionRequest {
        plan: request.plan.or_else(|| Some(source.plan.clone())),
        ..request
    };
    let tables = read_tenant(state, &source).await?;
    let asked = json!({ "from": source.slug, "from_id": source.id.to_string() });
    copy_into_new(state, request, "clone", asked, tables, if_exists).await
}

/// Provisions the tenant `request` asks for with `tables` (their bearer secrets left out) as
/// its database's contents, recorded as a run of `kind` under the new tenant.
async fn copy_into_new(
    state: &AppState,
    request: ProvisionRequest,
    kind: &str,
    asked: Value,
    tables: Vec<Table>,
    if_exists: IfExists,
) -> Result<TenantRecord> {
    let tables = snapshot::without_bearer_secrets(tables);
    let rows = snapshot::row_count(&tables);
    // The new tenant's id and slug, for the run's record before the tenant exists; a run that
    // finishes one left in provisioning keeps that one's id.
    let shape = Slug::parse_shape(&request.slug).ok();
    let existing = match &shape {
        Some(slug) => state.registry.load(slug).await?,
        None => None,
    };
    if let Some(taken) = &existing {
        if if_exists == IfExists::Conflict || taken.status != Status::Provisioning {
            return Err(Error::Conflict(format!(
                "a tenant with slug {} already exists",
                taken.slug
            )));
        }
    }
    let id = existing.as_ref().map_or_else(TenantId::new, |t| t.id);
    let slug_text = request.slug.clone();
    let request = ProvisionRequest {
        id: Some(id),
        contents: Some(Contents(Arc::new(tables))),
        ..request
    };
    let made = runs::recorded(
        state,
        kind,
        id,
        &slug_text,
        asked,
        async {
            match provision(state, request, if_exists).await {
                Ok(made) => Ok((made, json!({ "rows": rows }))),
                // Contents that do not fit this schema (`400`): no re-run would finish the
                // tenant, so the one this run began is removed again and the slug is free.
                Err(error @ Error::BadRequest(_)) if existing.is_none() => {
                    if let Err(cleanup) = super::lifecycle::delete(state, &slug_text).await {
                        tracing::warn!(tenant = %slug_text, error = %cleanup, "a copy that did not fit was not removed");
                    }
                    Err(error)
                }
                Err(error) => Err(error),
            }
        },
    )
    .await?;
    let action = if kind == "clone" {
        "tenant.cloned"
    } else {
        "tenant.restored"
    };
    audit::note_operator_action(state, &made, action, json!({ "rows": rows })).await;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup() -> Backup {
        Backup {
            tenant: BackupOf {
                id: "0190".into(),
                slug: "acme".into(),
                name: "Acme".into(),
                plan: "free".into(),
                schema_version: 2,
            },
            taken_at: 1_700_000_000_123,
            tables: vec![Table {
                name: "settings".into(),
                columns: vec![
                    Column {
                        name: "key".into(),
                        kind: Kind::Text,
                    },
                    Column {
                        name: "n".into(),
                        kind: Kind::Integer,
                    },
                ],
                rows: vec![vec!["a\nb".into(), 1.into()], vec!["c".into(), Value::Null]],
            }],
        }
    }

    #[test]
    fn a_backup_file_reads_back_as_it_was_written() {
        let backup = backup();
        assert_eq!(Backup::parse(&backup.to_file()).unwrap(), backup);
    }

    #[test]
    fn a_cut_short_or_changed_file_is_refused_with_the_line() {
        let file = backup().to_file();
        let message = |text: &str| match Backup::parse(text) {
            Err(Error::BadRequest(message)) => message,
            other => panic!("{other:?}"),
        };
        let lines: Vec<&str> = file.lines().collect();
        let without_end = lines[..lines.len() - 1].join("\n") + "\n";
        assert!(message(&without_end).contains("cut short"));
        assert!(message(&file[..file.len() - 5]).contains("part-way"));
        let edited = file.replace("\"c\"", "\"d\"");
        assert!(message(&edited).contains("checksum"));
        assert!(message("").contains("empty"));
        assert!(message("{\"format\": \"x\"}\n").contains("line 1"));
        let foreign = file.replace(FORMAT, "silo.tenant-export");
        assert!(message(&foreign).contains("format"));
        let extra = format!("{file}[1]\n");
        assert!(message(&extra).contains("after the end"));
        let wide = file.replace("[\"c\",null]", "[\"c\",null,3]");
        assert!(message(&wide).contains("line 4"));
    }
}
