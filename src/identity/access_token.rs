//! Access tokens: short-lived HS256 JWTs signed with a key derived per tenant, so a token
//! minted for one tenant cannot verify in another, whatever its claims say.

use std::sync::Arc;

use dashmap::DashMap;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::User;
use crate::{
    clock,
    error::{Error, Result},
    secrets::{Purpose, Secrets},
    tenant::TenantId,
};

/// Leeway for clock skew on `exp` (the contract allows at most 5 s).
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id in the tenant's database.
    pub sub: String,
    /// The tenant the token was minted for; must equal the resolved tenant.
    pub tid: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub struct AccessTokens {
    secrets: Secrets,
    ttl_secs: u64,
    /// Each tenant's keys, derived once: an HMAC per request saved on the hot path.
    keys: DashMap<TenantId, Arc<(EncodingKey, DecodingKey)>>,
    /// HS256 only, `exp`, `iat` and `sub` required; built once, as it allocates.
    validation: Validation,
}

impl AccessTokens {
    pub fn new(secrets: Secrets, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            secrets,
            ttl_secs,
            keys: DashMap::new(),
            validation,
        }
    }

    /// Default lifetime in seconds (`expires_in` of a token response).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Mints a token for `user` in `tenant`, valid for `ttl_secs`. Returns it and its claims.
    pub fn issue(
        &self,
        tenant: TenantId,
        user: &User,
        ttl_secs: u64,
    ) -> Result<(String, AccessClaims)> {
        let iat = clock::now_ms() / 1000;
        let claims = AccessClaims {
            sub: user.id.clone(),
            tid: tenant.to_string(),
            role: user.role.as_str().to_owned(),
            iat,
            exp: iat + ttl_secs as i64,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let keys = self.keys_of(tenant);
        let key = &keys.0;
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, key).map_err(anyhow::Error::from)?;
        Ok((token, claims))
    }

    fn keys_of(&self, tenant: TenantId) -> Arc<(EncodingKey, DecodingKey)> {
        // A read lock for every request after the tenant's first; a write lock only to add.
        if let Some(keys) = self.keys.get(&tenant) {
            return keys.clone();
        }
        self.keys
            .entry(tenant)
            .or_insert_with(|| {
                let secret = self.secrets.derive(Purpose::Jwt, tenant);
                Arc::new((
                    EncodingKey::from_secret(&secret),
                    DecodingKey::from_secret(&secret),
                ))
            })
            .clone()
    }

    /// Verifies signature (this tenant's key, HS256 only), expiry and every claim.
    pub fn verify(&self, tenant: TenantId, token: &str) -> Result<AccessClaims> {
        let keys = self.keys_of(tenant);
        let key = &keys.1;
        let claims = decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| Error::Unauthorized("the access token is invalid or expired"))?
            .claims;
        if claims.tid != tenant.encode(&mut TenantId::encode_buffer()) {
            return Err(Error::Unauthorized(
                "the access token belongs to another tenant",
            ));
        }
        Ok(claims)
    }
}
