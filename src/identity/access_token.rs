//! Access tokens: short-lived HS256 JWTs signed with a key derived per tenant, so a token
//! minted for one tenant cannot verify in another, whatever its claims say.

use std::sync::Arc;

use dashmap::DashMap;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use super::User;
use crate::{
    clock,
    error::{Error, Result},
    secrets::{Purpose, Secrets},
    tenant::{TenantId, TenantRecord},
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
    /// Each tenant's keys by version and master key (its position in `secrets`), derived
    /// once: an HMAC per request saved on the hot path.
    keys: DashMap<(TenantId, i64, usize), Arc<(EncodingKey, DecodingKey)>>,
    /// HS256 only, `exp`, `iat` and `sub` required; built once, as it allocates.
    validation: Validation,
}

/// The `kid` of a token signed with derivation `version` under the master key `key_id`.
pub fn kid(key_id: &str, version: i64) -> String {
    format!("{key_id}.v{version}")
}

/// `<key id>.v<version>`, the version 1 or more and the key id not empty.
fn parse_kid(kid: &str) -> Option<(&str, i64)> {
    let (key, version) = kid.rsplit_once(".v")?;
    let version = version.parse().ok().filter(|v: &i64| *v >= 1)?;
    (!key.is_empty()).then_some((key, version))
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

    /// Mints a token for `user` in `tenant`, valid for `ttl_secs`, signed with the tenant's
    /// current credentials and naming them in its `kid`. Returns it and its claims.
    pub fn issue(
        &self,
        tenant: &TenantRecord,
        user: &User,
        ttl_secs: u64,
    ) -> Result<(String, AccessClaims)> {
        let iat = clock::now_ms() / 1000;
        let claims = AccessClaims {
            sub: user.id.clone(),
            tid: tenant.id.to_string(),
            role: user.role.as_str().to_owned(),
            iat,
            exp: iat + ttl_secs as i64,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let (key_id, position) = self
            .secrets
            .resolve(&tenant.credentials_key)
            .zip(self.secrets.position(&tenant.credentials_key))
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "tenant {} uses master key {}, which is not configured",
                    tenant.slug,
                    tenant.credentials_key
                ))
            })?;
        let version = tenant.credentials_version;
        let header = Header {
            kid: Some(kid(key_id, version)),
            ..Header::new(Algorithm::HS256)
        };
        let keys = self
            .keys_of(tenant.id, version, position)
            .expect("a configured key's position");
        let token = encode(&header, &claims, &keys.0).map_err(anyhow::Error::from)?;
        Ok((token, claims))
    }

    fn keys_of(
        &self,
        tenant: TenantId,
        version: i64,
        position: usize,
    ) -> Option<Arc<(EncodingKey, DecodingKey)>> {
        // A read lock for every request after the tenant's first; a write lock only to add.
        if let Some(keys) = self.keys.get(&(tenant, version, position)) {
            return Some(keys.clone());
        }
        let secret = self
            .secrets
            .derive_at(position, Purpose::Jwt, tenant, version)?;
        Some(
            self.keys
                .entry((tenant, version, position))
                .or_insert_with(|| {
                    Arc::new((
                        EncodingKey::from_secret(&secret),
                        DecodingKey::from_secret(&secret),
                    ))
                })
                .clone(),
        )
    }

    /// Which key verifies a token whose `kid` names derivation `version` under `key_id`, if
    /// the tenant accepts it: its current credentials; its previous version (under any
    /// configured master key), so tokens issued before a rotation work until they expire; or
    /// its next version under the current master key, as another router may have rotated the
    /// tenant a moment before this one read the change.
    fn accepted(&self, tenant: &TenantRecord, key_id: &str, version: i64) -> Option<usize> {
        let current = tenant.credentials_version;
        let position = self.secrets.position(key_id)?;
        let is_current_key = self.secrets.resolve(&tenant.credentials_key) == Some(key_id);
        let ok = (version == current && is_current_key)
            || version == current - 1
            || (version == current + 1 && position == 0);
        ok.then_some(position)
    }

    /// Verifies signature (a key of this tenant's, HS256 only), expiry and every claim. A
    /// token without a `kid` (from before tokens named their key) is version 1 under the
    /// current master key.
    pub fn verify(&self, tenant: &TenantRecord, token: &str) -> Result<AccessClaims> {
        let invalid = || Error::Unauthorized("the access token is invalid or expired");
        let header = decode_header(token).map_err(|_| invalid())?;
        let (key_id, version) = match header.kid.as_deref() {
            None => (self.secrets.key_id(), 1),
            Some(kid) => parse_kid(kid).ok_or_else(invalid)?,
        };
        let position = self.accepted(tenant, key_id, version).ok_or_else(invalid)?;
        let keys = self
            .keys_of(tenant.id, version, position)
            .ok_or_else(invalid)?;
        let claims = decode::<AccessClaims>(token, &keys.1, &self.validation)
            .map_err(|_| invalid())?
            .claims;
        if claims.tid != tenant.id.encode(&mut TenantId::encode_buffer()) {
            return Err(Error::Unauthorized(
                "the access token belongs to another tenant",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kid_names_a_key_and_a_version() {
        assert_eq!(parse_kid(&kid("0123abcd", 3)), Some(("0123abcd", 3)));
        for bad in ["", ".v1", "abc", "abc.v0", "abc.v-1", "abc.vx", "abc.v"] {
            assert_eq!(parse_kid(bad), None, "{bad}");
        }
    }
}
