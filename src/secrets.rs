//! The master keys and what is derived from them: per-tenant JWT keys and database passwords.
//! Nothing derived is stored; the registry holds no credentials, only which key and which
//! version of the derivation each tenant's credentials use.

use std::{path::Path, sync::Arc};

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use crate::tenant::TenantId;

/// What a derived key is for; part of the HMAC input so keys for different purposes differ.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// Signing and verifying a tenant's access tokens.
    Jwt,
    /// A tenant database role's password (PostgreSQL).
    Database,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Jwt => "jwt:",
            Purpose::Database => "db:",
        }
    }
}

/// The server secrets: the current master key, and the previous ones still accepted while a
/// master-key roll moves tenants off them. Cheap to clone; never printed.
#[derive(Clone)]
pub struct Secrets {
    /// The current key first, then `secrets.previous_master_keys` in their order.
    keys: Arc<[MasterKey]>,
}

struct MasterKey {
    /// Names the key in the registry and in token `kid`s; derived from the key, so it needs no
    /// configuring and says nothing about the key.
    id: String,
    key: SecretSlice<u8>,
}

/// How many hex digits of `HMAC-SHA256(key, "silo key id")` name a key.
const KEY_ID_LEN: usize = 16;

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// Where the embedded default keeps its generated development key.
const DEV_KEY_FILE: &str = "dev-master-key";

impl Secrets {
    /// Uses `master_key` when set; otherwise reads or creates a development key in `data_dir`.
    pub fn load(master_key: &str, data_dir: &Path) -> anyhow::Result<Self> {
        if !master_key.is_empty() {
            return Ok(Self::from_bytes(master_key.as_bytes().to_vec()));
        }
        let path = data_dir.join(DEV_KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(existing) => existing.trim().to_owned(),
            Err(_) => {
                std::fs::create_dir_all(data_dir)?;
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let key = hex::encode(bytes);
                if publish_private(&path, &key)? {
                    tracing::warn!(
                        path = %path.display(),
                        "secrets.master_key is empty: generated a development key; set SILO__SECRETS__MASTER_KEY in production"
                    );
                    key
                } else {
                    // Another process starting at the same moment made it first: use theirs.
                    std::fs::read_to_string(&path)?.trim().to_owned()
                }
            }
        };
        anyhow::ensure!(
            key.len() >= 32,
            "{} holds a key shorter than 32 characters",
            path.display()
        );
        Ok(Self::from_bytes(key.into_bytes()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            keys: Arc::from([MasterKey::new(bytes)]),
        }
    }

    /// These secrets with `previous` master keys accepted too (`secrets.previous_master_keys`):
    /// tenants whose credentials still use one keep working until `silo keys rotate` has
    /// moved them to the current key. A repeat of the current key is left out.
    pub fn with_previous(self, previous: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut keys: Vec<MasterKey> = self
            .keys
            .iter()
            .map(|k| MasterKey::new(k.key.expose_secret().to_vec()))
            .collect();
        for bytes in previous {
            let key = MasterKey::new(bytes);
            if keys.iter().all(|known| known.id != key.id) {
                keys.push(key);
            }
        }
        Self { keys: keys.into() }
    }

    /// The id of the current master key: what new and rotated tenants record.
    pub fn key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The ids of the previous master keys still configured.
    pub fn previous_key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys[1..].iter().map(|k| k.id.as_str())
    }

    /// The configured key a tenant record names: an empty id (a row from before key ids were
    /// recorded) is the current key. `None` for a key no longer configured.
    pub fn resolve<'a>(&'a self, recorded: &'a str) -> Option<&'a str> {
        if recorded.is_empty() {
            return Some(self.key_id());
        }
        self.keys
            .iter()
            .find(|k| k.id == recorded)
            .map(|k| k.id.as_str())
    }

    /// Where the key `key_id` names stands among the configured ones (0: the current key).
    pub fn position(&self, key_id: &str) -> Option<usize> {
        let id = self.resolve(key_id)?;
        self.keys.iter().position(|k| k.id == id)
    }

    /// [`Secrets::derive_under`] by position, as [`Secrets::position`] gives it.
    pub fn derive_at(
        &self,
        position: usize,
        purpose: Purpose,
        tenant: TenantId,
        version: i64,
    ) -> Option<[u8; 32]> {
        Some(self.keys.get(position)?.derive(purpose, tenant, version))
    }

    /// `HMAC-SHA256(master_key, purpose || tenant id)`, with the current master key.
    pub fn derive(&self, purpose: Purpose, tenant: TenantId) -> [u8; 32] {
        self.derive_versioned(purpose, tenant, 1)
    }

    /// The key of derivation `version` under the current master key: version 1 is
    /// [`Secrets::derive`]'s; each later one adds `v<version>:` to the input, so a tenant
    /// moved forward gets a key unrelated to its old one while tenants not moved yet keep theirs.
    pub fn derive_versioned(&self, purpose: Purpose, tenant: TenantId, version: i64) -> [u8; 32] {
        self.keys[0].derive(purpose, tenant, version)
    }

    /// The key of derivation `version` under the master key `key_id` (empty: the current
    /// one); `None` when no configured key has that id.
    pub fn derive_under(
        &self,
        key_id: &str,
        purpose: Purpose,
        tenant: TenantId,
        version: i64,
    ) -> Option<[u8; 32]> {
        self.derive_at(self.position(key_id)?, purpose, tenant, version)
    }
}

impl MasterKey {
    fn new(bytes: Vec<u8>) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC accepts keys of any length");
        mac.update(b"silo key id");
        let mut id = hex::encode(mac.finalize().into_bytes());
        id.truncate(KEY_ID_LEN);
        Self {
            id,
            key: SecretSlice::from(bytes),
        }
    }

    fn derive(&self, purpose: Purpose, tenant: TenantId, version: i64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.label().as_bytes());
        if version > 1 {
            mac.update(format!("v{version}:").as_bytes());
        }
        mac.update(tenant.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Makes `path` hold `contents`, readable by its owner only, unless it exists already: false
/// then, and the file is left as it is. Written in full under a name of its own first and then
/// linked into place, so a process reading `path` never sees it half-written, and of two
/// processes starting at once exactly one key wins.
fn publish_private(path: &Path, contents: &str) -> std::io::Result<bool> {
    use std::io::Write;
    let partial = path.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&partial)
        .and_then(|mut file| file.write_all(contents.as_bytes()));
    let linked = written.and_then(|()| std::fs::hard_link(&partial, path));
    let _ = std::fs::remove_file(&partial);
    match linked {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_on_a_fresh_data_dir_agree_on_one_development_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| Secrets::load("", dir.path()).unwrap()))
                    .collect();
                starts
                    .into_iter()
                    .map(|start| start.join().unwrap().keys[0].key.expose_secret().to_vec())
                    .collect()
            });
            assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
            let names = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(names, 1, "only the key file is left");
        }
    }

    #[test]
    fn derived_keys_differ_by_tenant_and_purpose() {
        let secrets = Secrets::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let (a, b) = (TenantId::new(), TenantId::new());
        assert_ne!(
            secrets.derive(Purpose::Jwt, a),
            secrets.derive(Purpose::Jwt, b)
        );
        assert_ne!(
            secrets.derive(Purpose::Jwt, a),
            secrets.derive(Purpose::Database, a)
        );
        assert_eq!(
            secrets.derive(Purpose::Jwt, a),
            secrets.derive(Purpose::Jwt, a)
        );
    }

    #[test]
    fn a_version_or_another_master_key_derives_an_unrelated_key() {
        let a = Secrets::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let b = Secrets::from_bytes(b"fedcba9876543210fedcba9876543210".to_vec());
        let tenant = TenantId::new();
        let v1 = a.derive(Purpose::Database, tenant);
        assert_eq!(a.derive_versioned(Purpose::Database, tenant, 1), v1);
        assert_ne!(a.derive_versioned(Purpose::Database, tenant, 2), v1);
        assert_ne!(b.derive(Purpose::Database, tenant), v1);
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), KEY_ID_LEN);
    }

    #[test]
    fn a_previous_master_key_still_derives_its_keys_until_it_is_removed() {
        let old = Secrets::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let new = Secrets::from_bytes(b"fedcba9876543210fedcba9876543210".to_vec());
        let rolling = new
            .clone()
            .with_previous([b"0123456789abcdef0123456789abcdef".to_vec()]);
        let tenant = TenantId::new();
        assert_eq!(rolling.key_id(), new.key_id());
        assert_eq!(
            rolling.previous_key_ids().collect::<Vec<_>>(),
            [old.key_id()]
        );
        assert_eq!(
            rolling.derive_under(old.key_id(), Purpose::Jwt, tenant, 3),
            Some(old.derive_versioned(Purpose::Jwt, tenant, 3))
        );
        assert_eq!(
            new.derive_under(old.key_id(), Purpose::Jwt, tenant, 3),
            None
        );
        // A row from before key ids were recorded names the current key.
        assert_eq!(rolling.resolve(""), Some(new.key_id()));
        // The current key listed again as a previous one is not a second key.
        let repeated = new
            .clone()
            .with_previous([b"fedcba9876543210fedcba9876543210".to_vec()]);
        assert_eq!(repeated.previous_key_ids().count(), 0);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let secrets = Secrets::from_bytes(b"super-secret-super-secret-super-secret".to_vec());
        assert!(!format!("{secrets:?}").contains("super"));
    }
}
