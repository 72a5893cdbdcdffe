//! Which tenant a request names: Host (custom domain or subdomain), `X-Tenant`, or `/t/<slug>/`.
//! Pure: it reads the request's facts and returns what they claim. Looking the claims up is the
//! job of `http::tenant`; deciding between them is [`decide`].

use crate::error::Error;

/// One way a request can name its tenant (`resolve.strategies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    CustomDomain,
    Subdomain,
    Header,
    Path,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "custom_domain" => Some(Strategy::CustomDomain),
            "subdomain" => Some(Strategy::Subdomain),
            "header" => Some(Strategy::Header),
            "path" => Some(Strategy::Path),
            _ => None,
        }
    }
}

/// The parts of a request that can name a tenant.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    pub host: Option<&'a str>,
    pub x_tenant: Option<&'a str>,
    pub path: &'a str,
}

/// What a request claims, before the registry is asked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// A host to look up among custom domains (never one under the base domain, nor an IP).
    pub custom_domain: Option<String>,
    /// Slugs named by the subdomain, header and path strategies, lower-cased, not yet validated.
    pub named: Vec<String>,
    /// With the path strategy: the path with `/t/<slug>` removed.
    pub stripped_path: Option<String>,
}

/// Reads requests for the configured strategies, in their configured order.
#[derive(Debug, Clone)]
pub struct Resolver {
    strategies: Vec<Strategy>,
    base_domain: String,
}

impl Resolver {
    /// `strategies` were checked by `Settings::validate`; unknown names are skipped here.
    pub fn new(strategies: &[String], base_domain: &str) -> Self {
        Self {
            strategies: strategies
                .iter()
                .filter_map(|s| Strategy::parse(s))
                .collect(),
            base_domain: base_domain
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase(),
        }
    }

    pub fn claims(&self, facts: RequestFacts<'_>) -> Claims {
        let host = facts.host.map(normalise_host);
        let mut claims = Claims::default();
        for strategy in &self.strategies {
            match strategy {
                Strategy::CustomDomain => {
                    if let Some(host) = &host {
                        if self.could_be_custom_domain(host) {
                            claims.custom_domain = Some(host.clone());
                        }
                    }
                }
                Strategy::Subdomain => {
                    if let Some(sub) = host.as_deref().and_then(|h| self.subdomain_of(h)) {
                        claims.named.push(sub.to_owned());
                    }
                }
                Strategy::Header => {
                    // An empty header is a client leaving a value unset, not naming a tenant.
                    if let Some(value) = facts.x_tenant.map(str::trim).filter(|v| !v.is_empty()) {
                        claims.named.push(value.to_ascii_lowercase());
                    }
                }
                Strategy::Path => {
                    if let Some((slug, rest)) = split_tenant_path(facts.path) {
                        claims.named.push(slug.to_ascii_lowercase());
                        claims.stripped_path = Some(rest.to_owned());
                    }
                }
            }
        }
        claims
    }

    fn subdomain_of<'h>(&self, host: &'h str) -> Option<&'h str> {
        let prefix = host
            .strip_suffix(self.base_domain.as_str())?
            .strip_suffix('.')?;
        (!prefix.is_empty()).then_some(prefix)
    }

    /// Hosts under the base domain and IP literals are never custom domains (attaching such a
    /// domain is refused), so they cost no registry lookup.
    fn could_be_custom_domain(&self, host: &str) -> bool {
        host.contains('.')
            && host != self.base_domain
            && self.subdomain_of(host).is_none()
            && host.parse::<std::net::IpAddr>().is_err()
            && !host.starts_with('[')
    }
}

/// Lower-case, without port or trailing dot. `[::1]:8080` keeps its brackets.
fn normalise_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_port = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        raw.rsplit_once(':').map_or(raw, |(host, _port)| host)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// `/t/acme/v1/me` -> (`acme`, `/v1/me`).
fn split_tenant_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/t/")?;
    let (slug, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!slug.is_empty()).then_some((slug, tail))
}

/// The one `X-Tenant` value of a request: repeated headers must agree (after trimming and
/// lower-casing); empty ones name nothing.
pub fn single_header<I: IntoIterator<Item = String>>(values: I) -> Result<Option<String>, Error> {
    let mut named: Option<String> = None;
    for value in values {
        let value = value.trim().to_ascii_lowercase();
        if value.is_empty() {
            continue;
        }
        match &named {
            Some(first) if *first != value => return Err(Error::TenantConflict),
            _ => named = Some(value),
        }
    }
    Ok(named)
}

/// Decides between the slug a custom domain resolved to (if any) and the slugs the request
/// named. Different slugs conflict whether or not they exist; none at all is not found.
pub fn decide(custom_domain_slug: Option<&str>, named: &[String]) -> Result<String, Error> {
    let mut chosen: Option<&str> = custom_domain_slug;
    for slug in named {
        match chosen {
            Some(existing) if existing != slug => return Err(Error::TenantConflict),
            _ => chosen = Some(slug),
        }
    }
    chosen.map(str::to_owned).ok_or(Error::TenantNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(strategies: &[&str]) -> Resolver {
        let strategies: Vec<String> = strategies.iter().map(|s| s.to_string()).collect();
        Resolver::new(&strategies, "localhost")
    }

    fn default_resolver() -> Resolver {
        resolver(&["custom_domain", "subdomain", "header"])
    }

    fn facts<'a>(
        host: Option<&'a str>,
        x_tenant: Option<&'a str>,
        path: &'a str,
    ) -> RequestFacts<'a> {
        RequestFacts {
            host,
            x_tenant,
            path,
        }
    }

    #[test]
    fn subdomain_is_read_without_port_and_case() {
        let claims = default_resolver().claims(facts(Some("ACME.localhost:8080"), None, "/v1/me"));
        assert_eq!(claims.named, vec!["acme"]);
        assert_eq!(
            claims.custom_domain, None,
            "hosts under the base domain cost no domain lookup"
        );
    }

    #[test]
    fn bare_base_domain_and_ip_hosts_name_nothing() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
        ] {
            let claims = default_resolver().claims(facts(Some(host), None, "/"));
            assert_eq!(claims, Claims::default(), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_custom_domain_candidates() {
        let claims = default_resolver().claims(facts(Some("App.Acme.com."), None, "/"));
        assert_eq!(claims.custom_domain.as_deref(), Some("app.acme.com"));
    }

    #[test]
    fn header_is_trimmed_and_lower_cased() {
        let claims = default_resolver().claims(facts(Some("localhost"), Some(" Globex "), "/"));
        assert_eq!(claims.named, vec!["globex"]);
    }

    #[test]
    fn repeated_headers_must_agree() {
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            single_header(values(&["acme", " ACME "])).unwrap(),
            Some("acme".into())
        );
        assert_eq!(
            single_header(values(&["", "acme"])).unwrap(),
            Some("acme".into())
        );
        assert_eq!(single_header(values(&[])).unwrap(), None);
        assert!(matches!(
            single_header(values(&["acme", "globex"])),
            Err(Error::TenantConflict)
        ));
    }

    #[test]
    fn an_empty_header_names_nothing() {
        for empty in ["", "   "] {
            let claims = default_resolver().claims(facts(Some("acme.localhost"), Some(empty), "/"));
            assert_eq!(claims.named, vec!["acme"]);
        }
    }

    #[test]
    fn path_strategy_is_opt_in_and_strips_the_prefix() {
        let off = default_resolver().claims(facts(None, None, "/t/acme/v1/me"));
        assert!(off.named.is_empty());
        let on = resolver(&["path"]).claims(facts(None, None, "/t/Acme/v1/me"));
        assert_eq!(on.named, vec!["acme"]);
        assert_eq!(on.stripped_path.as_deref(), Some("/v1/me"));
        let bare = resolver(&["path"]).claims(facts(None, None, "/t/acme"));
        assert_eq!(bare.stripped_path.as_deref(), Some("/"));
    }

    #[test]
    fn unlisted_strategies_are_not_consulted() {
        let claims = resolver(&["header"]).claims(facts(Some("acme.localhost"), None, "/"));
        assert!(claims.named.is_empty());
    }

    #[test]
    fn different_slugs_conflict_and_equal_ones_agree() {
        assert!(matches!(
            decide(None, &["a1x".into(), "b2y".into()]),
            Err(Error::TenantConflict)
        ));
        assert!(matches!(
            decide(Some("acme"), &["globex".into()]),
            Err(Error::TenantConflict)
        ));
        assert_eq!(decide(Some("acme"), &["acme".into()]).unwrap(), "acme");
        assert!(matches!(decide(None, &[]), Err(Error::TenantNotFound)));
    }
}
