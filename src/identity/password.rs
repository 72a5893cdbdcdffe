//! argon2id password hashing, off the async runtime and bounded, with a dummy hash so an
//! unknown email costs the same as a wrong password.

use std::sync::Arc;

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;

use crate::{
    config::AuthSettings,
    error::{Error, Result},
};

/// Length rule of the API contract: 8 to 1,024 characters.
pub fn validate_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if !(8..=1024).contains(&len) {
        return Err(Error::field("password", "must be 8 to 1024 characters"));
    }
    Ok(())
}

pub struct PasswordHasher {
    params: Params,
    /// argon2 is CPU- and memory-heavy: at most one hash per core at a time.
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the email is unknown.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy_hash = hash_blocking(&params, &uuid::Uuid::now_v7().to_string())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let (params, password) = (self.params.clone(), password.to_owned());
        let hash = tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(anyhow::Error::from)??;
        Ok(hash)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is none
    /// (unknown email), so both failures take the same time. Returns false in that case.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(known && matches)
    }
}

fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}
