//! argon2id password hashing, off the async runtime and bounded, with a dummy hash so an
//! unknown email costs the same as a wrong password. Hashing is the one piece of request work
//! that takes whole cores for tens of milliseconds: its slots are shared fairly between tenants.

use std::sync::Arc;

use dashmap::DashMap;

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    config::AuthSettings,
    error::{Error, Result},
    tenant::TenantId,
};

/// Length rule of the API contract: 8 to 1,024 characters.
pub const PASSWORD_MIN_LEN: usize = 8;
pub const PASSWORD_MAX_LEN: usize = 1024;

pub fn validate_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if !(PASSWORD_MIN_LEN..=PASSWORD_MAX_LEN).contains(&len) {
        return Err(Error::field("password", "must be 8 to 1024 characters"));
    }
    Ok(())
}

pub struct PasswordHasher {
    params: Params,
    slots: Slots,
    /// A real hash of a random password, verified against when the email is unknown.
    dummy_hash: String,
}

/// argon2 is CPU- and memory-heavy: at most one hash per core at a time, and at most half of
/// them (at least one) for any one tenant. A tenant flooding sign-ins then queues behind its
/// own hashes and cannot take every core; the other half is left to the other tenants. (A
/// tenant alone on an idle machine is held to its half too: the price of a simple rule.)
struct Slots {
    all: Arc<Semaphore>,
    per_tenant: usize,
    tenants: DashMap<TenantId, Arc<Semaphore>>,
}

impl Slots {
    fn new(cores: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(cores)),
            per_tenant: (cores / 2).max(1),
            tenants: DashMap::new(),
        }
    }

    /// Forgets the tenants hashing nothing right now, so the map does not grow with every
    /// tenant that ever signed in.
    fn prune(&self) {
        self.tenants.retain(|_, own| {
            Arc::strong_count(own) > 1 || own.available_permits() < self.per_tenant
        });
    }

    /// A slot for `tenant`: first one of its own, then one of all.
    async fn take(&self, tenant: TenantId) -> Result<[OwnedSemaphorePermit; 2]> {
        let own = self
            .tenants
            .entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone();
        let own = own.acquire_owned().await.map_err(anyhow::Error::from)?;
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .map_err(anyhow::Error::from)?;
        Ok([own, all])
    }
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
            slots: Slots::new(cores),
            dummy_hash,
        })
    }

    /// Housekeeping: forgets the hashing slots of tenants not hashing right now.
    pub fn prune(&self) {
        self.slots.prune();
    }

    /// Hashes a new password of a user of `tenant`.
    pub async fn hash(&self, tenant: TenantId, password: &str) -> Result<String> {
        let _slot = self.slots.take(tenant).await?;
        let (params, password) = (self.params.clone(), password.to_owned());
        let hash = tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(anyhow::Error::from)??;
        Ok(hash)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is none
    /// (unknown email), so both failures take the same time. Returns false in that case.
    pub async fn verify(
        &self,
        tenant: TenantId,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let _slot = self.slots.take(tenant).await?;
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

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_tenant_holding_its_share_of_slots_leaves_the_rest_to_others() {
        let slots = Slots::new(2);
        let (noisy, quiet) = (TenantId::new(), TenantId::new());
        let first = slots.take(noisy).await.unwrap();
        // The noisy tenant's next hash waits for its own first one...
        assert!(slots.take(noisy).now_or_never().is_none());
        // ...while another tenant gets the free core at once.
        let other = slots
            .take(quiet)
            .now_or_never()
            .expect("a free slot")
            .unwrap();
        // With every core busy, the next one waits, whoever asks.
        assert!(slots.take(TenantId::new()).now_or_never().is_none());
        drop((first, other));
        assert!(slots.take(noisy).now_or_never().is_some());
        slots.prune();
        assert!(
            slots.tenants.is_empty(),
            "nobody is hashing: nothing is kept"
        );
    }
}
