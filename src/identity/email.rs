//! An email address as an account key: trimmed, lower-cased, at most 254 characters.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Most characters in an address, and in the part before `@`.
    pub const MAX_LEN: usize = 254;
    pub const MAX_LOCAL_LEN: usize = 64;

    /// Emails are compared case-insensitively after trimming, so they are stored that way.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.chars().count() > Self::MAX_LEN {
            return Err("must be an email address of at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address like name@example.com");
        };
        let well_formed = !local.is_empty()
            && local.chars().count() <= Self::MAX_LOCAL_LEN
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err("must be an email address like name@example.com");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`: a default display name.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lower_cases() {
        assert_eq!(
            Email::parse("  Alice@X.com ").unwrap().as_str(),
            "alice@x.com"
        );
    }

    #[test]
    fn rejects_malformed_and_overlong_addresses() {
        let long = format!("{}@x.com", "a".repeat(250));
        for bad in [
            "",
            "alice",
            "@x.com",
            "alice@",
            "alice@x",
            "a b@x.com",
            "a@b@x.com",
            "a@.com",
            &long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
