//! A PostgreSQL server: one database and one role per tenant.
//!
//! `servers.<name>.url` names the server's admin role, which only the control path uses. Each
//! tenant gets a database `silo_t_<id>` cloned with `CREATE DATABASE ... TEMPLATE` from a
//! pre-migrated template (`silo_template_<schema fingerprint>`, built once per tenant schema),
//! owned by its own login role of the same name. The role's password is derived from the master
//! key (and the tenant's credentials version) and never stored; `CONNECT` is revoked from
//! `PUBLIC`, so no other tenant's role can even open the database; and the role's
//! `CONNECTION LIMIT` is the tenant pool's size, so the server itself enforces the per-tenant
//! cap. The request path connects as that role.

use std::{str::FromStr, sync::Arc, time::Instant};

use anyhow::Context;
use sqlx::{
    postgres::{PgConnectOptions, PgConnection},
    Connection, Executor, Row,
};
use tokio::sync::Mutex;

use crate::{
    error::{Error, Result},
    schema::TenantSchema,
    secrets::{Purpose, Secrets},
    tenant::{TenantId, TenantRecord},
};

#[derive(Clone)]
pub struct PostgresServer {
    /// The admin role's URL, as configured.
    admin_url: url::Url,
    secrets: Secrets,
    /// Each tenant role's `CONNECTION LIMIT`: the tenant pool's size.
    connection_limit: u32,
    /// One template build at a time in this process (others wait, then find it built); holds
    /// the name of the template last found or built, so later tenants skip the look.
    template: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.admin_url.clone();
        let _ = shown.set_password(None);
        f.debug_struct("PostgresServer")
            .field("admin", &shown.as_str())
            .finish_non_exhaustive()
    }
}

/// The history table sqlx's PostgreSQL migrator keeps, so either tool reads the other's.
const HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

impl PostgresServer {
    pub fn parse(url: &str, secrets: Secrets, connection_limit: u32) -> Result<Self, String> {
        // The message never repeats the URL: it holds the admin role's password.
        let admin_url = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        PgConnectOptions::from_str(url).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        Ok(Self {
            admin_url,
            secrets,
            connection_limit,
            template: Arc::default(),
        })
    }

    /// A new tenant's database (and role) name: its whole id, so names never collide and a
    /// slug never becomes an identifier.
    pub fn database_name(&self, id: TenantId) -> String {
        format!("silo_t_{}", id.short())
    }

    /// The tenant's database name, checked: it is also the role name, and both are written
    /// into SQL as identifiers, so only the shape silo makes is accepted.
    fn identifier<'a>(&self, tenant: &'a TenantRecord) -> Result<&'a str> {
        let name = tenant.database.as_str();
        let ok = name.len() <= 63
            && name.starts_with("silo_t_")
            && name["silo_t_".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(Error::Internal(anyhow::anyhow!(
                "invalid tenant database name {name:?}"
            )));
        }
        Ok(name)
    }

    /// The tenant role's password at `version` under master key `key_id`: derived, never
    /// stored. A key no longer configured is a fault of the deployment.
    fn password(&self, tenant: &TenantRecord, key_id: &str, version: i64) -> Result<String> {
        let key = self
            .secrets
            .derive_under(key_id, Purpose::Database, tenant.id, version)
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "tenant {} uses master key {key_id}, which is not configured",
                    tenant.slug
                ))
            })?;
        Ok(hex::encode(key))
    }

    fn url_for(&self, database: &str, role: Option<(&str, &str)>) -> url::Url {
        let mut url = self.admin_url.clone();
        url.set_path(&format!("/{database}"));
        if let Some((user, password)) = role {
            let _ = url.set_username(user);
            let _ = url.set_password(Some(password));
        }
        url
    }

    /// How the request path reaches the tenant's database: as the tenant's own role.
    pub fn tenant_url(&self, tenant: &TenantRecord) -> Result<String> {
        let name = self.identifier(tenant)?;
        let password =
            self.password(tenant, &tenant.credentials_key, tenant.credentials_version)?;
        Ok(self.url_for(name, Some((name, &password))).to_string())
    }

    /// The tenant role's URL at the credentials a rotation moves the tenant to next (the
    /// following version, under the current master key): what a connection tries when the
    /// role refuses the recorded ones, as another process has just rotated them.
    pub fn next_tenant_url(&self, tenant: &TenantRecord) -> Result<String> {
        let name = self.identifier(tenant)?;
        let password = self.password(tenant, "", tenant.credentials_version + 1)?;
        Ok(self.url_for(name, Some((name, &password))).to_string())
    }

    /// Gives the tenant's role the password of version `version` under the current master key
    /// (the step of a key rotation that precedes the registry's). Sessions already open stay
    /// logged in; new ones need the new password.
    pub async fn set_role_password(&self, tenant: &TenantRecord, version: i64) -> Result<()> {
        let name = self.identifier(tenant)?;
        // A SCRAM verifier, never the password (see `create_database`).
        let password = scram_verifier(&self.password(tenant, "", version)?);
        let mut admin = self.admin(None).await?;
        admin
            .execute(format!("ALTER ROLE {name} PASSWORD '{password}'").as_str())
            .await
            .with_context(|| format!("changing the role password of {}", tenant.slug))?;
        let _ = admin.close().await;
        Ok(())
    }

    /// The admin role's URL for the tenant's database (seeding, the owner, counts).
    pub fn admin_url_for(&self, tenant: &TenantRecord) -> Result<String> {
        Ok(self.url_for(self.identifier(tenant)?, None).to_string())
    }

    /// An admin session. A server that cannot be reached right now is a passing condition of
    /// its tenants (`503 tenant_unavailable`, as on the request path); one that refuses the admin
    /// role, a fault of the deployment (`500`).
    async fn admin(&self, database: Option<&str>) -> Result<PgConnection> {
        let url = match database {
            Some(database) => self.url_for(database, None),
            None => self.admin_url.clone(),
        };
        match PgConnection::connect(url.as_str()).await {
            Ok(conn) => Ok(conn),
            Err(refused @ sqlx::Error::Database(_)) => Err(anyhow::Error::new(refused)
                .context("connecting to the database server as its admin role")
                .into()),
            Err(unreachable) => Err(crate::pool::PoolError::Unreachable(unreachable).into()),
        }
    }

    /// Held while one run builds the tenant's database: a session-level advisory lock on an
    /// admin connection, released when the connection closes (also if the run dies).
    pub async fn lock_build(&self, tenant: &TenantRecord) -> Result<PgConnection> {
        let name = self.identifier(tenant)?;
        let mut conn = self.admin(None).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(format!("silo:build:{name}"))
            .fetch_one(&mut conn)
            .await
            .context("taking the build lock")?;
        if !locked {
            return Err(Error::Conflict(format!(
                "tenant {} is being provisioned by another run; try again once it has finished",
                tenant.slug
            )));
        }
        Ok(conn)
    }

    /// Creates the tenant's role and database from the template unless they exist, on `admin`
    /// (the build lock's session: no connection of its own); says whether this call created
    /// the database. Its tables are handed to the tenant's role by the migration that follows
    /// ([`PostgresServer::migrate`]), which provisioning always runs.
    pub async fn create_database(
        &self,
        tenant: &TenantRecord,
        schema: &Arc<TenantSchema>,
        admin: &mut PgConnection,
    ) -> Result<bool> {
        let name = self.identifier(tenant)?;
        let template = self.ensure_template(schema, admin).await?;
        let role_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(name)
                .fetch_one(&mut *admin)
                .await
                .context("looking for the tenant role")?;
        // Sent as a SCRAM verifier, never in the clear: a statement may reach the server's log.
        // The verifier is base64 and `$:`, the name checked: both are safe as literals, which
        // role statements need (they take no parameters).
        let password = scram_verifier(&self.password(
            tenant,
            &tenant.credentials_key,
            tenant.credentials_version,
        )?);
        let limit = self.connection_limit;
        let role = if role_exists { "ALTER" } else { "CREATE" };
        admin
            .execute(
                format!("{role} ROLE {name} LOGIN PASSWORD '{password}' CONNECTION LIMIT {limit}")
                    .as_str(),
            )
            .await
            .context("creating the tenant role")?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut *admin)
                .await
                .context("looking for the tenant database")?;
        if !exists {
            let cloned = admin
                .execute(
                    format!("CREATE DATABASE {name} TEMPLATE {template} OWNER {name}").as_str(),
                )
                .await;
            if let Err(error) = cloned {
                // The template may be gone behind this process's back: look for it next time.
                *self.template.lock().await = None;
                return Err(anyhow::Error::new(error)
                    .context(format!("creating the database of {}", tenant.slug))
                    .into());
            }
        }
        // Also on a database an earlier run made and died before finishing: idempotent, so a
        // re-run never takes a half-set-up database for a finished one.
        let made = admin
            .execute(format!("REVOKE ALL ON DATABASE {name} FROM PUBLIC").as_str())
            .await;
        if let Err(error) = made {
            if !exists {
                let _ = self.drop_database(tenant).await;
            }
            return Err(anyhow::Error::new(error)
                .context(format!("setting up the database of {}", tenant.slug))
                .into());
        }
        Ok(!exists)
    }

    /// The tenant database's size on the server.
    pub async fn database_bytes(&self, tenant: &TenantRecord) -> Result<u64> {
        let name = self.identifier(tenant)?;
        let mut admin = self.admin(None).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .context("sizing the tenant database")?;
        let _ = admin.close().await;
        Ok(bytes.max(0) as u64)
    }

    /// Drops the tenant's database, its open connections first, and its role; either already
    /// gone is fine.
    pub async fn drop_database(&self, tenant: &TenantRecord) -> Result<()> {
        let name = self.identifier(tenant)?;
        let mut admin = self.admin(None).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .with_context(|| format!("dropping the database of {}", tenant.slug))?;
        admin
            .execute(format!("DROP ROLE IF EXISTS {name}").as_str())
            .await
            .with_context(|| format!("dropping the role of {}", tenant.slug))?;
        let _ = admin.close().await;
        Ok(())
    }

    /// Brings the tenant's database to `schema` as the admin role, in one transaction that
    /// also hands every table the admin role owns (the template's, a migration's) to the
    /// tenant's role. Two migrators of one tenant take turns (a transaction-level advisory
    /// lock).
    pub async fn migrate(&self, tenant: &TenantRecord, schema: &TenantSchema) -> Result<i64> {
        let name = self.identifier(tenant)?;
        let mut conn = self.admin(Some(name)).await?;
        let migrated = migrate(&mut conn, schema, Some(name)).await;
        let _ = conn.close().await;
        Ok(migrated.with_context(|| format!("migrating the database of {}", tenant.slug))?)
    }

    /// The pre-migrated template of `schema`, built if missing: in a database of its own name
    /// that is renamed into place once complete, so no clone ever sees a half-built template.
    async fn ensure_template(
        &self,
        schema: &TenantSchema,
        admin: &mut PgConnection,
    ) -> Result<String> {
        let template = format!("silo_template_{}", schema.fingerprint());
        let mut known = self.template.lock().await;
        if known.as_deref() == Some(template.as_str()) {
            return Ok(template);
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&template)
                .fetch_one(&mut *admin)
                .await
                .context("looking for the tenant template")?;
        if exists {
            *known = Some(template.clone());
            return Ok(template);
        }
        // The whole id: two builders starting in the same millisecond share its first digits.
        let building = format!("silo_building_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute(format!("CREATE DATABASE {building}").as_str())
            .await
            .context("creating the tenant template")?;
        let built = async {
            let mut inside = self.admin(Some(&building)).await?;
            let migrated = migrate(&mut inside, schema, None).await;
            let _ = inside.close().await;
            migrated?;
            admin
                .execute(format!("ALTER DATABASE {building} RENAME TO {template}").as_str())
                .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = built {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)").as_str())
                .await;
            // Another process built it meanwhile: use theirs.
            let theirs: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&template)
                    .fetch_one(&mut *admin)
                    .await
                    .unwrap_or(false);
            if theirs {
                *known = Some(template.clone());
                return Ok(template);
            }
            return Err(error.context("building the tenant template").into());
        }
        tracing::info!(%template, "built the tenant template database");
        *known = Some(template.clone());
        drop_leftovers(admin).await;
        Ok(template)
    }
}

/// How old a `silo_building_*` database must be before a new build takes it for a crashed
/// run's leftover: far longer than a build takes.
const ABANDONED_BUILD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// After a template is built: drops the template builds a crashed run left behind (each build
/// has a name of its own, holding its start time, so an old one is nobody's). Best effort.
/// Templates of other tenant schemas stay: another router (an older silo, during a rolling
/// upgrade) may be cloning from one right now.
async fn drop_leftovers(admin: &mut PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        r"SELECT datname FROM pg_database WHERE datname LIKE 'silo\_building\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    {
        Ok(names) => names,
        Err(error) => return tracing::warn!(%error, "could not list old tenant templates"),
    };
    for name in names {
        {
            let id = name.trim_start_matches("silo_building_");
            let started = uuid::Uuid::parse_str(id)
                .ok()
                .and_then(|id| id.get_timestamp())
                .map(|at| at.to_unix())
                .map(|(secs, nanos)| std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos));
            let abandoned = started
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_BUILD);
            if !abandoned {
                continue;
            }
        }
        // A name from the catalogue, of the shape silo makes: safe as an identifier.
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        match admin
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
        {
            Ok(_) => tracing::info!(database = %name, "dropped an abandoned template build"),
            Err(error) => {
                tracing::info!(database = %name, %error, "an abandoned template build stays for now")
            }
        }
    }
}

/// What an admin step failed with, as its callers should see it: a session the server dropped
/// part-way (it stopped, restarted or was cut off) is a passing condition of the server's
/// tenants, `503 tenant_unavailable` as when it cannot be reached at all; anything else stays
/// what it was. The cause goes to the log.
pub fn admin_fault(error: Error) -> Error {
    match error {
        Error::Internal(cause) if lost_session(&cause) => {
            tracing::warn!(error = %format!("{cause:#}"), "a PostgreSQL server went away during an admin step");
            Error::TenantUnavailable { retry_after: 5 }
        }
        other => other,
    }
}

/// Whether `cause` is, at bottom, the server's session ending: the connection broke, or the
/// server said it is shutting down or cannot take connections (SQLSTATE classes 08 and 57P).
fn lost_session(cause: &anyhow::Error) -> bool {
    cause
        .chain()
        .any(|e| match e.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Some(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        })
}

/// PostgreSQL's stored form of a `scram-sha-256` password (RFC 5802, 4096 iterations), made
/// here so the password itself never reaches the server.
fn scram_verifier(password: &str) -> String {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use hmac::{Hmac, Mac};
    use rand::RngCore;
    use sha2::{Digest, Sha256};
    const ITERATIONS: u32 = 4096;
    let hmac = |key: &[u8], data: &[u8]| -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(data);
        mac.finalize().into_bytes().into()
    };
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    // PBKDF2-HMAC-SHA-256 of one block: its output is one hash long.
    let mut block = hmac(
        password.as_bytes(),
        &[&salt[..], &1u32.to_be_bytes()].concat(),
    );
    let mut salted = block;
    for _ in 1..ITERATIONS {
        block = hmac(password.as_bytes(), &block);
        salted.iter_mut().zip(block).for_each(|(s, b)| *s ^= b);
    }
    let stored = Sha256::digest(hmac(&salted, b"Client Key"));
    let server = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored),
        STANDARD.encode(server)
    )
}

/// Gives every table and free-standing sequence of the `public` schema that `role` does not own
/// yet to `role` (a sequence a column owns goes with its table, and cannot be given on its own).
/// Tables it owns already are not touched, so a run with nothing to hand over takes no lock.
fn give_tables_to(role: &str) -> String {
    format!(
        "DO $$ DECLARE t record; BEGIN
           FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'p')
                      AND c.relowner <> '{role}'::regrole
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                      AND d.objid = c.oid AND d.deptype IN ('a', 'i')) LOOP
             EXECUTE format('ALTER TABLE public.%I OWNER TO {role}', t.relname);
           END LOOP;
         END $$"
    )
}

/// Every pending migration of `schema` in one transaction on `conn`, with the checks of the
/// SQLite migrator (no dirty, unknown or changed migration); the admin role's tables go to
/// `owner`.
async fn migrate(
    conn: &mut PgConnection,
    schema: &TenantSchema,
    owner: Option<&str>,
) -> anyhow::Result<i64> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('silo:migrate'))")
        .execute(&mut *tx)
        .await?;
    tx.execute(HISTORY).await?;
    let applied: Vec<(i64, Vec<u8>, bool)> =
        sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?;
    schema.check_history(&applied)?;
    for migration in schema.migrations() {
        if applied.iter().any(|(v, _, _)| *v == migration.version) {
            continue;
        }
        let started = Instant::now();
        // A bare string runs as a simple query: several statements in one go.
        (&mut *tx)
            .execute(migration.sql.as_ref())
            .await
            .with_context(|| {
                format!(
                    "migration {} ({})",
                    migration.version, migration.description
                )
            })?;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, TRUE, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .bind(started.elapsed().as_nanos() as i64)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(owner) = owner {
        // Cheap (a look at the catalogue) and also what finishes a fresh clone of the template.
        tx.execute(give_tables_to(owner).as_str()).await?;
    }
    tx.commit().await?;
    Ok(schema.target_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(error: sqlx::Error, context: &str) -> Error {
        Error::Internal(anyhow::Error::new(error).context(context.to_owned()))
    }

    #[test]
    fn a_session_cut_part_way_is_unavailable_and_other_faults_stay_internal() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        for lost in [
            internal(sqlx::Error::Io(reset), "creating the database of acme"),
            internal(
                sqlx::Error::Protocol("unexpected end of stream".into()),
                "dropping the role of acme",
            ),
            internal(sqlx::Error::PoolTimedOut, "sizing the tenant database"),
        ] {
            assert!(
                matches!(admin_fault(lost), Error::TenantUnavailable { .. }),
                "a lost session is 503"
            );
        }
        let bug = internal(sqlx::Error::RowNotFound, "looking for the tenant role");
        assert!(matches!(admin_fault(bug), Error::Internal(_)));
        let plain = Error::Internal(anyhow::anyhow!("invalid tenant database name"));
        assert!(matches!(admin_fault(plain), Error::Internal(_)));
        let conflict = Error::Conflict("being provisioned".into());
        assert!(matches!(admin_fault(conflict), Error::Conflict(_)));
    }
}
