//! Plan templates, `tenant_templates/<plan>/plan.toml` and `seed.sql`, loaded once at start:
//! the control path seeds new tenants from them, the request path reads their settings.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use serde::Deserialize;

/// `plan.toml`: what a tenant on this plan may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    /// Anyone may sign up (`POST /v1/auth/signup`); else only the owner and invitees get in.
    #[serde(default)]
    pub open_signup: bool,
    /// Sustained requests per second for the whole tenant.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Requests of this tenant in flight at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_requests: u32,
    /// Quotas (absent: none). Accounts in the tenant, whoever made them.
    #[serde(default)]
    pub max_users: Option<u64>,
    #[serde(default)]
    pub max_projects: Option<u64>,
    /// The database's size on its server, as `stats` measures it.
    #[serde(default)]
    pub max_database_bytes: Option<u64>,
}

fn default_rps() -> u32 {
    50
}
fn default_burst() -> u32 {
    100
}
fn default_concurrency() -> u32 {
    16
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub settings: PlanSettings,
    /// Rows every new tenant of this plan starts with (may be empty).
    pub seed_sql: String,
}

/// Every plan found under the templates directory.
#[derive(Debug, Clone, Default)]
pub struct Plans(BTreeMap<String, Plan>);

impl Plans {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading plan templates in {}", dir.display()))?;
        let mut plans = BTreeMap::new();
        for entry in entries {
            let path = entry?.path();
            let plan_file = path.join("plan.toml");
            if !plan_file.is_file() {
                continue;
            }
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&plan_file)?;
            let settings: PlanSettings =
                toml_from_str(&text).with_context(|| format!("parsing {}", plan_file.display()))?;
            let seed_file = path.join("seed.sql");
            let seed_sql = if seed_file.is_file() {
                std::fs::read_to_string(&seed_file)?
            } else {
                String::new()
            };
            plans.insert(
                name.clone(),
                Plan {
                    name,
                    settings,
                    seed_sql,
                },
            );
        }
        anyhow::ensure!(
            !plans.is_empty(),
            "no plan templates (<plan>/plan.toml) in {}",
            dir.display()
        );
        Ok(Self(plans))
    }

    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Limits for a tenant whose plan folder has gone (it keeps working, with the defaults).
    pub fn fallback_settings(&self) -> PlanSettings {
        PlanSettings {
            open_signup: false,
            requests_per_second: default_rps(),
            burst: default_burst(),
            max_concurrent_requests: default_concurrency(),
            max_users: None,
            max_projects: None,
            max_database_bytes: None,
        }
    }

    /// The plan a tenant gets when none is named: `free` when it exists, else the first.
    pub fn default_name(&self) -> &str {
        if self.0.contains_key("free") {
            "free"
        } else {
            self.0.keys().next().map(String::as_str).unwrap_or("free")
        }
    }
}

fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()?;
    Ok(parsed.try_deserialize()?)
}
