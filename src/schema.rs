//! The migrations: the control registry's, embedded and run by sqlx's `Migrator`; and the tenant
//! schema, built in or from `migrations.dir`, which `control::migrate` applies to each tenant
//! database (sqlx's checksums and history table, one transaction per tenant).

use std::{borrow::Cow, path::Path, sync::LazyLock};

use sha2::{Digest, Sha256};
use sqlx::{
    migrate::{Migration, MigrationType, Migrator},
    AnyPool,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

static CONTROL: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::CONTROL));

fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Brings the control registry up to date.
pub async fn migrate_control(pool: &AnyPool) -> Result<(), sqlx::migrate::MigrateError> {
    CONTROL.run(pool).await
}

/// The tenant migrations a silo runs with: the built-in ones, or the folder `migrations.dir`
/// names (`<version>_<description>.sql`). A folder is checked before any tenant is touched: its
/// names parse, its versions run 1, 2, 3, ... with no gap, and it holds every built-in migration
/// unchanged (tenants already carry them; a changed one would fail their checksums), so it can
/// only add newer migrations.
#[derive(Debug, Clone)]
pub struct TenantSchema {
    migrations: Vec<Migration>,
    fingerprint: String,
}

impl TenantSchema {
    /// The migrations built into this binary.
    pub fn built_in() -> Self {
        let files = embedded::TENANT.iter().map(|(version, description, sql)| {
            (*version, description.to_string(), sql.to_string())
        });
        Self::from_files(files.collect())
    }

    /// `dir` when it is set (not empty), else the built-in set. The message names what is
    /// wrong, for `migrations.dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        if dir.as_os_str().is_empty() {
            return Ok(Self::built_in());
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?
                .path();
            if path.extension().is_none_or(|ext| ext != "sql") {
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let (version, description) = stem
                .split_once('_')
                .filter(|(v, d)| {
                    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty()
                })
                .ok_or_else(|| {
                    format!(
                        "{name}: expected <version>_<description>.sql, like 0003_add_column.sql"
                    )
                })?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("{name}: the version is too large"))?;
            let sql = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if sql.trim().is_empty() {
                return Err(format!("{name} is empty"));
            }
            files.push((version, description.to_owned(), sql));
        }
        files.sort_by_key(|(version, _, _)| *version);
        for (at, (version, description, _)) in files.iter().enumerate() {
            let expected = at as i64 + 1;
            if *version != expected {
                return Err(format!(
                    "migration {version:04}_{description}.sql: expected version {expected} (versions run from 1 with no gap or repeat)"
                ));
            }
        }
        for (version, description, sql) in embedded::TENANT {
            match files.get(*version as usize - 1) {
                None => {
                    return Err(format!(
                        "the built-in migration {version:04}_{description}.sql is missing; the folder must hold every built-in migration"
                    ))
                }
                Some((_, _, given)) if given != sql => {
                    return Err(format!(
                        "migration {version:04} differs from the built-in {version:04}_{description}.sql; tenants already carry it, so it cannot change"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(Self::from_files(files))
    }

    fn from_files(files: Vec<(i64, String, String)>) -> Self {
        let mut hasher = Sha256::new();
        let migrations = files
            .into_iter()
            .map(|(version, description, sql)| {
                hasher.update(version.to_le_bytes());
                hasher.update(sql.as_bytes());
                Migration::new(
                    version,
                    Cow::Owned(description),
                    MigrationType::Simple,
                    Cow::Owned(sql),
                    false,
                )
            })
            .collect();
        Self {
            migrations,
            fingerprint: hex::encode(&hasher.finalize()[..8]),
        }
    }

    /// Oldest first; each with sqlx's checksum (SHA-384 of its SQL), as tenants record it.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The version every tenant database should carry: the newest migration.
    pub fn target_version(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// Changes whenever any migration changes, so a pre-migrated template built from another
    /// schema is never copied into a new tenant.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Checks a tenant database's migration history, `(version, checksum, success)` rows, before
    /// anything is applied on top of it: no migration failed part-way (a dirty database), none
    /// is unknown to this schema, none was changed after it was applied. Every migrator (SQLite
    /// and PostgreSQL) asks this.
    pub fn check_history(&self, applied: &[(i64, Vec<u8>, bool)]) -> anyhow::Result<()> {
        for (version, checksum, success) in applied {
            if !success {
                anyhow::bail!(
                    "migration {version} failed part-way before (a dirty database); repair it by hand"
                );
            }
            match self.migrations.iter().find(|m| m.version == *version) {
                None => anyhow::bail!(
                    "the database carries migration {version}, which this schema (up to {}) does not have",
                    self.target_version()
                ),
                Some(known) if known.checksum.as_ref() != checksum.as_slice() => anyhow::bail!(
                    "migration {version} was changed after it was applied (its checksum differs)"
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_version_order() {
        for set in [embedded::CONTROL, embedded::TENANT] {
            assert!(!set.is_empty());
            assert!(set.windows(2).all(|w| w[0].0 < w[1].0));
        }
        let schema = TenantSchema::built_in();
        assert_eq!(schema.target_version(), embedded::TENANT.last().unwrap().0);
    }

    /// Writes the built-in migrations into a fresh folder, changed by `adjust`.
    fn folder(adjust: impl FnOnce(&Path)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (version, description, sql) in embedded::TENANT {
            std::fs::write(
                dir.path().join(format!("{version:04}_{description}.sql")),
                sql,
            )
            .unwrap();
        }
        adjust(dir.path());
        dir
    }

    #[test]
    fn an_empty_dir_setting_means_the_built_in_migrations() {
        let schema = TenantSchema::load(Path::new("")).unwrap();
        assert_eq!(schema.fingerprint(), TenantSchema::built_in().fingerprint());
    }

    #[test]
    fn a_folder_may_add_newer_migrations_and_its_fingerprint_changes() {
        let next = embedded::TENANT.len() + 1;
        let dir = folder(|dir| {
            std::fs::write(
                dir.join(format!("{next:04}_extra.sql")),
                "ALTER TABLE projects ADD COLUMN extra TEXT;",
            )
            .unwrap();
            std::fs::write(dir.join("README.md"), "not a migration").unwrap();
        });
        let schema = TenantSchema::load(dir.path()).unwrap();
        assert_eq!(schema.target_version(), next as i64);
        assert_ne!(schema.fingerprint(), TenantSchema::built_in().fingerprint());
        let same = TenantSchema::load(folder(|_| {}).path()).unwrap();
        assert_eq!(same.fingerprint(), TenantSchema::built_in().fingerprint());
    }

    #[test]
    fn a_folder_with_a_gap_a_bad_name_a_changed_or_missing_built_in_migration_is_refused() {
        let last = embedded::TENANT.len();
        let (_, first_description, _) = embedded::TENANT[0];
        type Adjust = Box<dyn FnOnce(&Path)>;
        let cases: Vec<(&str, Adjust)> = vec![
            (
                "expected version",
                Box::new(move |dir: &Path| {
                    std::fs::write(dir.join(format!("{:04}_gap.sql", last + 2)), "SELECT 1;")
                        .unwrap();
                }),
            ),
            (
                "expected <version>_<description>.sql",
                Box::new(|dir: &Path| {
                    std::fs::write(dir.join("next.sql"), "SELECT 1;").unwrap();
                }),
            ),
            (
                "cannot change",
                Box::new(move |dir: &Path| {
                    std::fs::write(
                        dir.join(format!("0001_{first_description}.sql")),
                        "SELECT 1;",
                    )
                    .unwrap();
                }),
            ),
            (
                "is empty",
                Box::new(move |dir: &Path| {
                    std::fs::write(dir.join(format!("{:04}_blank.sql", last + 1)), "  \n").unwrap();
                }),
            ),
            (
                "expected version",
                Box::new(move |dir: &Path| {
                    std::fs::remove_file(dir.join(format!("0001_{first_description}.sql")))
                        .unwrap();
                }),
            ),
        ];
        for (expected, adjust) in cases {
            let dir = folder(adjust);
            let error = TenantSchema::load(dir.path()).unwrap_err();
            assert!(
                error.contains(expected),
                "{error:?} does not say {expected:?}"
            );
        }
        let missing = TenantSchema::load(Path::new("/no/such/folder")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
