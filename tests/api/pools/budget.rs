//! The connection budget: silo never holds more than `servers.<name>.max_connections` towards a
//! server. A cold tenant makes room by closing the least recently used idle pool, or waits for
//! one to become idle, and is served either way.

use std::collections::BTreeSet;

use reqwest::Method;

use super::{tenant_with_owner, try_signup};
use crate::helpers::{spawn_app_with, Cli, Reply, TestApp};

/// A silo whose `local` server has room for `budget` connections, `per_tenant` to each pool.
async fn app_with_budget(budget: u32, per_tenant: u32) -> TestApp {
    spawn_app_with(|s| {
        s.servers.get_mut("local").unwrap().max_connections = budget;
        s.pool.max_connections_per_tenant = per_tenant;
        // Generous: these tests are about every request being served, not how fast.
        s.pool.acquire_timeout_ms = 20_000;
        s.http.request_timeout_secs = 60;
    })
    .await
}

/// What `/metrics` says about the budget of `local`.
#[derive(Debug)]
struct BudgetMetrics {
    pools_open: f64,
    reserved: f64,
    held: f64,
    waits: f64,
    evictions: f64,
}

async fn budget_metrics(app: &TestApp) -> BudgetMetrics {
    // moka counts pools lazily; exact after its housekeeping.
    app.state.pools.run_housekeeping().await;
    let reply = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics");
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.unwrap();
    let sample = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    BudgetMetrics {
        pools_open: sample("silo_tenant_pools_open"),
        reserved: sample(r#"silo_server_connections_reserved{server="local"}"#),
        held: sample(r#"silo_server_connections{server="local"}"#),
        waits: sample(r#"silo_server_budget_waits_total{server="local"}"#),
        evictions: sample(r#"silo_server_budget_evictions_total{server="local"}"#),
    }
}

/// Reads the metrics and asserts that no more than `budget` connections (and so pools of one
/// connection each) are open or reserved.
async fn assert_within_budget(app: &TestApp, budget: f64) -> BudgetMetrics {
    let metrics = budget_metrics(app).await;
    // What is really open, counted by the operating system rather than by silo's bookkeeping:
    // each SQLite connection holds one descriptor on its tenant's database file.
    let open_connections: usize = std::fs::read_dir(app.tenants_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".db") && !name.starts_with('.')
        })
        .filter_map(|file| crate::helpers::handles_on(&file))
        .sum();
    assert!(
        open_connections as f64 <= budget,
        "{open_connections} connections open; {metrics:?}"
    );
    assert!(metrics.reserved <= budget, "{metrics:?}");
    assert!(metrics.held <= metrics.reserved, "{metrics:?}");
    assert!(metrics.pools_open <= budget, "{metrics:?}");
    metrics
}

#[tokio::test]
async fn a_full_budget_closes_the_least_recently_used_idle_pool_for_a_new_tenant() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = app_with_budget(2, 1).await;

    let mut owners = Vec::new();
    for slug in ["acme", "globex", "initech"] {
        // Signing in opens the tenant's pool; initech's needs room that only closing one makes.
        let (id, owner) = tenant_with_owner(&app, slug).await;
        let me = app.tenant(slug).get("/v1/me", &owner.access_token).await;
        assert_eq!(me.status, 200, "{slug}: {}", me.body);
        assert_within_budget(&app, 2.0).await;
        owners.push((id, owner));
    }
    let full = assert_within_budget(&app, 2.0).await;
    assert!(full.evictions >= 1.0, "{full:?}");
    let [(acme, acme_owner), (globex, _), (initech, _)] = &owners[..] else {
        unreachable!()
    };
    assert_eq!(
        app.state.pools.open_connections(*acme).await,
        0,
        "acme, the least recently used, was closed"
    );
    assert!(app.state.pools.open_connections(*globex).await > 0);
    assert!(app.state.pools.open_connections(*initech).await > 0);

    // The closed tenant is served again: its pool reopens, closing another.
    let me = app
        .tenant("acme")
        .get("/v1/me", &acme_owner.access_token)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["tenant"]["slug"], "acme");
    let after = assert_within_budget(&app, 2.0).await;
    assert!(after.evictions > full.evictions, "{after:?}");
}

#[tokio::test]
async fn two_tenants_sharing_a_one_connection_budget_are_both_served_when_hit_at_once() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = app_with_budget(1, 1).await;
    let (_, acme) = tenant_with_owner(&app, "acme").await;
    let (_, globex) = tenant_with_owner(&app, "globex").await;
    let before = assert_within_budget(&app, 1.0).await;

    let (acme_client, globex_client) = (app.tenant("acme"), app.tenant("globex"));
    let requests = (0..10).flat_map(|_| {
        [
            acme_client.get("/v1/projects", &acme.access_token),
            globex_client.get("/v1/projects", &globex.access_token),
        ]
    });
    let replies = futures::future::join_all(requests).await;

    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body["data"].is_array(), "{}", reply.body);
    }
    // Only one pool fits, so the tenant that was cold had to close the other's or wait for it.
    let after = assert_within_budget(&app, 1.0).await;
    assert!(
        after.waits + after.evictions > before.waits + before.evictions,
        "{before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn tenants_closed_and_reopened_for_the_budget_still_see_only_their_own_projects() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = app_with_budget(1, 1).await;
    let mut tenants = Vec::new();
    for (count, slug) in ["acme", "globex", "initech"].into_iter().enumerate() {
        let (_, owner) = tenant_with_owner(&app, slug).await;
        let client = app.tenant(slug);
        let mut projects = BTreeSet::new();
        // A different count per tenant, so a leak would show in the lists.
        for n in 0..=count {
            let name = format!("{slug} project {n}");
            projects.insert(client.create_project(&owner.access_token, &name).await);
        }
        tenants.push((slug, owner, projects));
    }
    let before = assert_within_budget(&app, 1.0).await;

    // With room for one pool, every turn to another tenant closes one pool and opens another.
    for _round in 0..2 {
        for (slug, owner, own) in &tenants {
            let client = app.tenant(slug);
            let list = client.get("/v1/projects", &owner.access_token).await;
            assert_eq!(list.status, 200, "{slug}: {}", list.body);
            let listed: BTreeSet<String> = list.body["data"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|project| project["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(&listed, own, "{slug} lists exactly its own projects");
            for (_, _, theirs) in tenants.iter().filter(|(other, ..)| other != slug) {
                for id in theirs {
                    client
                        .assert_project_unreachable(id, &owner.access_token)
                        .await;
                }
            }
        }
    }
    let after = assert_within_budget(&app, 1.0).await;
    assert!(after.evictions >= before.evictions + 6.0, "{after:?}");
    let me = Reply::send(
        app.request(Method::GET, "/v1/me")
            .header("host", "acme.localhost")
            .bearer_auth(&tenants[1].1.access_token),
    )
    .await;
    me.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_pool_that_fails_to_open_gives_its_room_in_the_budget_back() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = app_with_budget(1, 1).await;
    let broken = app.create_tenant("broken").await;
    app.create_tenant("healthy").await;
    std::fs::remove_file(app.database_file(&broken)).unwrap();

    for _ in 0..3 {
        let reply = try_signup(&app, "broken").await;
        reply.assert_error(503, "tenant_unavailable");
    }
    // The only connection of the budget is free again: nothing to close, nothing to wait for.
    app.tenant("healthy")
        .assert_serves("b@x.com", "b-password")
        .await;
    let metrics = assert_within_budget(&app, 1.0).await;
    assert_eq!(metrics.waits + metrics.evictions, 0.0, "{metrics:?}");
}

#[test]
fn a_server_budget_smaller_than_one_tenant_pool_exits_2_naming_the_key() {
    let cli = Cli::new();
    for text in [
        "[servers.local]\nmax_connections = 3\n\n[pool]\nmax_connections_per_tenant = 4\n",
        "[servers.local]\nmax_connections = 0\n",
    ] {
        let config = cli.dir.path().join("budget.toml");
        std::fs::write(&config, text).unwrap();
        let out = cli.run(&["--config", config.to_str().unwrap(), "tenant", "list"]);
        assert_eq!(out.code, 2, "{text:?}: {out:?}");
        assert!(
            out.stderr.contains("servers.local.max_connections"),
            "{text:?} should name the key: {out:?}"
        );
    }
}
