//! Where a new tenant's database goes: the server named at provisioning, else the configured
//! server with the fewest tenants (ties: the first by name).

use crate::{
    error::{Error, Result},
    state::AppState,
};

pub async fn choose_server(state: &AppState, requested: Option<&str>) -> Result<String> {
    if let Some(name) = requested {
        return match state.servers.get(name) {
            Some(_) => Ok(name.to_owned()),
            None => Err(Error::field("server", format!("unknown server {name:?}"))),
        };
    }
    let counts = state.registry.tenants_per_server().await?;
    state
        .servers
        .names()
        .min_by_key(|name| counts.get(*name).copied().unwrap_or(0))
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no servers are configured")))
}
