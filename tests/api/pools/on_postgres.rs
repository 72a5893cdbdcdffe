//! The budget on a PostgreSQL server, counted by the server itself: 300 tenants through a budget
//! of 30 connections under concurrent random load answer nothing but successes and bounded
//! `503 tenant_unavailable`s, and `pg_stat_activity`, sampled throughout (provisioning too),
//! never shows silo holding more than 30 connections to it.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::{stream, StreamExt};
use rand::Rng;
use serde_json::json;
use silo::control::{IfExists, Owner, ProvisionRequest};
use sqlx::{Connection, PgConnection};

use crate::helpers::{spawn_app_with, Cluster};

const TENANTS: usize = 300;
const BUDGET: u32 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_tenants_through_a_budget_of_thirty_never_hold_more_than_thirty() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let admin_url = cluster.admin_url();
    let app = spawn_app_with(|s| {
        let local = s.servers.get_mut("local").unwrap();
        local.url = admin_url.clone();
        local.max_connections = BUDGET;
        s.pool.max_connections_per_tenant = 2;
        s.pool.acquire_timeout_ms = 3_000;
        s.http.request_timeout_secs = 30;
    })
    .await;

    // Every client backend but the sampler's own, every 5 ms, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicUsize::new(0));
    let mut sampler = PgConnection::connect(&admin_url).await.unwrap();
    let sampling = {
        let (stop, most, samples) = (stop.clone(), most.clone(), samples.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let held: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                )
                .fetch_one(&mut sampler)
                .await
                .unwrap();
                most.fetch_max(held as usize, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let provisioned: Vec<_> = stream::iter(0..TENANTS)
        .map(|n| {
            let request = ProvisionRequest {
                slug: format!("t{n:03}"),
                name: None,
                plan: Some("pro".into()),
                server: None,
                domains: vec![],
                owner: Some(Owner {
                    email: "owner@x.test".into(),
                    password: "owner-password".into(),
                }),
                ..Default::default()
            };
            silo::control::provision(&app.state, request, IfExists::Conflict)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let during_provisioning = most.load(Ordering::Relaxed);
    for tenant in &provisioned {
        assert!(tenant.is_ok(), "{tenant:?}");
    }

    // Concurrent sign-ins at random tenants: each reads the tenant's users, writes a session
    // and an audit row, through that tenant's pool, 60 at a time.
    let answers: Vec<(u16, String, bool)> = stream::iter(0..900)
        .map(|_| {
            let slug = format!("t{:03}", rand::thread_rng().gen_range(0..TENANTS));
            let app = &app;
            async move {
                let reply = app
                    .tenant(&slug)
                    .post(
                        "/v1/auth/login",
                        None,
                        json!({"email": "owner@x.test", "password": "owner-password"}),
                    )
                    .await;
                let retry = reply.headers.contains_key("retry-after");
                (reply.status, reply.code().to_owned(), retry)
            }
        })
        .buffer_unordered(60)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    sampling.await.unwrap();

    let served = answers
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .count();
    let others: Vec<_> = answers
        .iter()
        .filter(|(status, code, retry)| {
            !(*status == 200 || (*status == 503 && code == "tenant_unavailable" && *retry))
        })
        .collect();
    assert!(
        others.is_empty(),
        "answers other than 200 and a bounded 503: {others:?}"
    );
    assert!(
        served > answers.len() / 2,
        "only {served} of {} served",
        answers.len()
    );
    let most = most.load(Ordering::Relaxed);
    eprintln!(
        "{served} of {} served, {} bounded 503s; at most {most} connections \
         ({during_provisioning} while provisioning), {} samples",
        answers.len(),
        answers.len() - served,
        samples.load(Ordering::Relaxed)
    );
    assert!(samples.load(Ordering::Relaxed) > 20, "the sampler ran");
    assert!(
        most <= BUDGET as usize,
        "pg_stat_activity showed {most} connections, over the budget of {BUDGET}"
    );
    assert!(most >= 4, "the load reached the server ({most} at most)");
    app.shutdown().await;
}
