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
                write_private(&path, &key)?;
                tracing::warn!(
                    path = %path.display(),
                    "secrets.master_key is empty: generated a development key; set SILO__SECRETS__MASTER_KEY in production"
                );
                key
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
        let mut mac = Hmac::<Sha256>::new_from_slice(self.master_key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.label().as_bytes());
        mac.update(tenant.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
