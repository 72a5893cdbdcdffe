//! A custom domain a tenant can be reached at: a lower-case DNS name with at least two labels.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    /// Most characters in a domain name, and in one of its labels.
    pub const MAX_LEN: usize = 253;
    pub const MAX_LABEL_LEN: usize = 63;

    /// Parses a domain, lower-cased and without a trailing dot. A domain under `base_domain` is
    /// refused: those hosts belong to the subdomain strategy, so they could never resolve here.
    pub fn parse(raw: &str, base_domain: &str) -> Result<Self, &'static str> {
        let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err("must be a domain name of 1 to 253 characters");
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err("must have at least two labels, like app.example.com");
        }
        for label in &labels {
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label.is_empty()
                || label.len() > Self::MAX_LABEL_LEN
                || !ok_chars
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err("must be a valid DNS name (letters, digits and - in each label)");
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("must be a name, not an IP address");
        }
        let base = base_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name == base || name.ends_with(&format!(".{base}")) {
            return Err("must not be under the base domain");
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        assert_eq!(
            Domain::parse("App.Acme.COM.", "localhost")
                .unwrap()
                .as_str(),
            "app.acme.com"
        );
    }

    #[test]
    fn the_base_domain_is_compared_as_resolution_reads_it() {
        assert!(Domain::parse("app.example.com", "Example.COM.").is_err());
        assert!(Domain::parse("app.example.org", "example.com.").is_ok());
    }

    #[test]
    fn rejects_malformed_domains() {
        for bad in [
            "",
            "localhost",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            "a_b.com",
            "10.0.0.1",
            "x.acme.localhost",
        ] {
            assert!(Domain::parse(bad, "localhost").is_err(), "{bad:?}");
        }
    }
}
