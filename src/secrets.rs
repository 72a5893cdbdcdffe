//! The master key and what is derived from it: per-tenant JWT keys and database passwords.
//! Nothing derived is stored; the registry holds no credentials.

use std::path::Path;

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

/// The server secret. Cheap to clone; never printed.
#[derive(Clone)]
pub struct Secrets {
    master_key: SecretSlice<u8>,
}

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
            master_key: SecretSlice::from(bytes),
        }
    }

    /// `HMAC-SHA256(master_key, purpose || tenant id)`.
    pub fn derive(&self, purpose: Purpose, tenant: TenantId) -> [u8; 32] {
        self.derive_versioned(purpose, tenant, 1)
    }

    /// The key of derivation `version`: version 1 is [`Secrets::derive`]'s; each later one
    /// adds `v<version>:` to the input, so a tenant moved forward gets a key unrelated to its
    /// old one while tenants not moved yet keep theirs.
    pub fn derive_versioned(&self, purpose: Purpose, tenant: TenantId, version: i64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.master_key.expose_secret())
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
                    .map(|start| start.join().unwrap().master_key.expose_secret().to_vec())
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
    fn debug_output_hides_the_key() {
        let secrets = Secrets::from_bytes(b"super-secret-super-secret-super-secret".to_vec());
        assert!(!format!("{secrets:?}").contains("super"));
    }
}
