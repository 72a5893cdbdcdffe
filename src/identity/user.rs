//! A user row in the tenant's own database.

use super::{Email, Role};
use crate::{
    clock,
    error::{Error, Result},
    sql::{self, Executor, Row, TenantConn},
};
use serde::Serialize;

/// A user of one tenant, as the API shows it (never with the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A user about to be created; the password is already hashed.
pub struct NewUser<'a> {
    pub email: &'a Email,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

/// Most characters in a name (of a user, project, token or tenant).
pub const NAME_MAX: usize = 200;

/// Names are 1 to 200 characters after trimming.
pub fn validate_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    let len = name.chars().count();
    if !(1..=NAME_MAX).contains(&len) {
        return Err(Error::field(field, "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// The columns `from_row` reads, as a macro so queries are `concat!`-ed at compile time: the
/// per-request user check builds no SQL string.
macro_rules! columns {
    () => {
        "id, email, name, role, created_at"
    };
}

impl User {
    /// The per-request check: a removed user or a changed role takes effect at once.
    pub async fn by_id(conn: &mut impl Executor, id: &str) -> Result<Option<User>> {
        let row = sql::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The user and their password hash, for a login.
    pub async fn with_hash_by_email(
        conn: &mut impl Executor,
        email: &Email,
    ) -> Result<Option<(User, String)>> {
        let row = sql::query(concat!(
            "SELECT ",
            columns!(),
            ", password_hash FROM users WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(Some((from_row(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// Creates a user; an email already taken in this tenant is `409 conflict`.
    pub async fn create(conn: &mut impl Executor, new: NewUser<'_>) -> Result<User> {
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email: new.email.as_str().to_owned(),
            name: new.name.to_owned(),
            role: new.role,
            created_at: clock::now_ms(),
        };
        sql::query(
            "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(new.password_hash)
        .bind(user.role.as_str())
        .bind(user.created_at)
        .conflict_on_unique("an account with this email already exists in this tenant")
        .execute(conn)
        .await?;
        Ok(user)
    }

    /// Members, newest first, after the cursor `after`.
    pub async fn list(conn: &mut TenantConn, after: Option<&str>, limit: u32) -> Result<Vec<User>> {
        let rows = sql::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Changes a role. Demoting the last owner is refused in the same statement, so two
    /// concurrent demotions cannot leave the tenant without one. Returns false when refused.
    pub async fn set_role(conn: &mut TenantConn, id: &str, role: Role) -> Result<bool> {
        let done = sql::query(
            "UPDATE users SET role = $1, updated_at = $2
             WHERE id = $3 AND (role <> 'owner' OR $1 = 'owner'
                                OR (SELECT COUNT(*) FROM users WHERE role = 'owner') > 1)",
        )
        .bind(role.as_str())
        .bind(clock::now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(done > 0)
    }

    /// Removes a user; their refresh and API tokens are deleted in the same transaction, and
    /// their access tokens stop working because every request checks the user. The last owner
    /// is never removed. Returns false when refused.
    pub async fn remove(conn: &mut TenantConn, id: &str) -> Result<bool> {
        let mut tx = conn.begin().await?;
        for table in ["refresh_tokens", "api_tokens"] {
            sql::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(id)
                .execute(&mut tx)
                .await?;
        }
        let done = sql::query(
            "DELETE FROM users
             WHERE id = $1 AND (role <> 'owner' OR (SELECT COUNT(*) FROM users WHERE role = 'owner') > 1)",
        )
        .bind(id)
        .execute(&mut tx)
        .await?;
        if done == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}

fn from_row(row: &Row) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role.parse().map_err(|_| {
            Error::Internal(anyhow::anyhow!("user row has an unknown role {role:?}"))
        })?,
        created_at: row.try_get("created_at")?,
    })
}
