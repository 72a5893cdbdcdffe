//! A tenant's slug, parsed once: 3–63 characters of `[a-z0-9-]`, starting with a letter,
//! no trailing `-`, no `--`, not reserved. A `Slug` is safe in a Host, a path or a log line.

use std::fmt;

use serde::Serialize;

/// Slugs no tenant may take, whatever the configuration says.
pub const RESERVED: &[&str] = &[
    "www", "api", "admin", "app", "mail", "static", "assets", "status", "silo",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Fewest and most characters in a slug.
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 63;

    /// Checks the shape only; see [`Slug::parse`] for the reserved list too.
    pub fn parse_shape(raw: &str) -> Result<Self, &'static str> {
        let len = raw.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err("must be 3 to 63 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only a-z, 0-9 and -");
        }
        if !raw.as_bytes()[0].is_ascii_lowercase() {
            return Err("must start with a letter");
        }
        if raw.ends_with('-') {
            return Err("must not end with -");
        }
        if raw.contains("--") {
            return Err("must not contain --");
        }
        Ok(Self(raw.to_owned()))
    }

    /// A slug a new tenant may take: the right shape and not reserved here or in `extra_reserved`.
    pub fn parse(raw: &str, extra_reserved: &[String]) -> Result<Self, &'static str> {
        let slug = Self::parse_shape(raw)?;
        if RESERVED.contains(&raw) || extra_reserved.iter().any(|r| r == raw) {
            return Err("is reserved");
        }
        Ok(slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_slugs() {
        for ok in ["acme", "a-b-c", "abc", "globex-2", &"a".repeat(63)] {
            assert!(Slug::parse(ok, &[]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_every_broken_rule() {
        let too_long = "a".repeat(64);
        for bad in [
            "ab",
            &too_long,
            "Acme",
            "1acme",
            "-acme",
            "acme-",
            "ac--me",
            "ac_me",
            "ac.me",
            "ac me",
            "acmé",
            "../etc",
            "acme;drop",
            "",
            "   ",
        ] {
            assert!(Slug::parse(bad, &[]).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rejects_reserved_slugs_built_in_and_configured() {
        assert_eq!(Slug::parse("admin", &[]), Err("is reserved"));
        assert_eq!(
            Slug::parse("billing", &["billing".into()]),
            Err("is reserved")
        );
        assert!(Slug::parse_shape("admin").is_ok());
    }
}
