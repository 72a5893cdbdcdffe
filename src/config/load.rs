//! Loading: the config file, then `SILO__` variables, then [`Settings::validate`]. Values from
//! the environment are text, read as the key's type asks; a bad one is reported with its key.

use super::{defaults, ConfigError, Settings};

impl Settings {
    /// Reads `path` (or `config.toml` when it exists), then `SILO__` variables, then validates.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        // Names what was wrong when the config crate names no key (a TOML syntax error, say).
        let file = match path {
            Some(path) => path.to_str().unwrap_or("--config"),
            None => "config.toml",
        };
        match path {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("{} not found", path.display()),
                    ));
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name("config.toml")
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        // Values from the environment stay text, as written: a token or a key that looks like a
        // number ("007", "1e3") is used byte for byte, and numeric keys still read whole numbers
        // and booleans from text. Only the list keys are split, at commas.
        let env = config::Environment::with_prefix("SILO")
            .prefix_separator("__")
            .separator("__");
        let mut builder = builder.add_source(env);
        for (key, value) in list_overrides() {
            builder = builder
                .set_override(key, value)
                .map_err(|e| ConfigError::new(key, e.to_string()))?;
        }
        let config = builder.build().map_err(|e| {
            ConfigError::new(
                error_key(&e).unwrap_or_else(|| file.to_owned()),
                e.to_string(),
            )
        })?;
        let raw: config::Value = config
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError::new(file, e.to_string()))?;
        no_fractions(String::new(), &raw)?;
        let mut settings: Settings = config.try_deserialize().map_err(|e| {
            let key = error_key(&e).unwrap_or_else(|| file.to_owned());
            ConfigError::new(key, e.to_string())
        })?;
        // `SILO__SERVERS__LOCAL__MAX_CONNECTIONS` alone keeps the default server's directory.
        // Only when `local` is the only server: beside configured servers, a `local` without
        // a url is a mistake to report, not a server to add.
        if settings.servers.len() == 1 {
            if let Some(local) = settings.servers.get_mut("local") {
                if local.url.is_empty() {
                    local.url = defaults::LOCAL_SERVER_URL.to_owned();
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }
}

/// The config crate puts the key inside its message; pull it out for the `key` field.
fn error_key(error: &config::ConfigError) -> Option<String> {
    let text = error.to_string();
    for (opening, closing) in [
        ("for key `", '`'),
        ("unknown field `", '`'),
        ("missing configuration field \"", '"'),
    ] {
        if let Some(start) = text.find(opening) {
            let rest = &text[start + opening.len()..];
            if let Some(end) = rest.find(closing) {
                return Some(rest[..end].to_owned());
            }
        }
    }
    None
}

/// Every number silo reads is whole (counts, bytes, seconds, milliseconds); the config crate
/// would round `2.7` to 3 without a word, so a fraction anywhere is refused with its key.
fn no_fractions(key: String, value: &config::Value) -> Result<(), ConfigError> {
    match &value.kind {
        config::ValueKind::Float(number) => Err(ConfigError::new(
            key,
            format!("must be a whole number, not {number}"),
        )),
        config::ValueKind::Table(table) => table.iter().try_for_each(|(name, value)| {
            let key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            no_fractions(key, value)
        }),
        config::ValueKind::Array(items) => items
            .iter()
            .try_for_each(|item| no_fractions(key.clone(), item)),
        _ => Ok(()),
    }
}

/// The list keys given in the environment, split at commas (`SILO__RESOLVE__STRATEGIES=
/// subdomain,header`); an empty value is an empty list.
fn list_overrides() -> Vec<(&'static str, Vec<String>)> {
    const LISTS: [(&str, &str); 4] = [
        ("resolve.strategies", "SILO__RESOLVE__STRATEGIES"),
        ("resolve.reserved_slugs", "SILO__RESOLVE__RESERVED_SLUGS"),
        ("webhooks.urls", "SILO__WEBHOOKS__URLS"),
        (
            "secrets.previous_master_keys",
            "SILO__SECRETS__PREVIOUS_MASTER_KEYS",
        ),
    ];
    let mut lists = Vec::new();
    // `vars_os`: a variable that is not UTF-8 (of anything, not silo's) must not stop silo.
    for (name, raw) in std::env::vars_os() {
        let (Some(name), Some(raw)) = (name.to_str(), raw.to_str()) else {
            continue;
        };
        for (key, variable) in LISTS {
            if name.eq_ignore_ascii_case(variable) {
                let items = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                lists.push((key, items));
            }
        }
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{Value, ValueKind};

    fn table(entries: &[(&str, ValueKind)]) -> Value {
        let map = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::new(None, v.clone())))
            .collect::<config::Map<String, Value>>();
        Value::new(None, ValueKind::Table(map))
    }

    #[test]
    fn a_fraction_anywhere_is_refused_with_its_key() {
        let http = table(&[
            ("listen", ValueKind::String("127.0.0.1:1".into())),
            ("request_timeout_secs", ValueKind::Float(2.7)),
        ]);
        let root = table(&[("http", http.kind.clone())]);
        let error = no_fractions(String::new(), &root).unwrap_err();
        assert_eq!(error.key, "http.request_timeout_secs");
        let whole = table(&[(
            "http",
            table(&[("shutdown_grace_secs", ValueKind::I64(3))]).kind,
        )]);
        assert!(no_fractions(String::new(), &whole).is_ok());
    }
}
