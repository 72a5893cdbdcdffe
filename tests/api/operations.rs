//! Operations: request ids, metrics, per-tenant limits, timeouts and graceful shutdown.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn every_response_carries_a_request_id_the_clients_own_when_it_is_sane() {
    let app = spawn_app().await;
    let own = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(own.headers()["x-request-id"], "trace-abc_123");
    for bad in ["has space", &"x".repeat(129)] {
        let replaced = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{bad:?} replaced by a UUID, got {id}"
        );
    }
    let error = app
        .client
        .get(app.url("/v1/me"))
        .header("x-tenant", "nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 404);
    assert!(error.headers().contains_key("x-request-id"));
    let admin = app
        .client
        .get(format!("http://{}/admin/v1/tenants", app.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
    assert!(admin.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_without_tenant_labels() {
    let app = spawn_app().await;
    app.create_tenant("zebra-unique-slug").await;
    let session = app
        .tenant("zebra-unique-slug")
        .signup("z@z.test", "zebra-password")
        .await;
    for _ in 0..3 {
        app.tenant("zebra-unique-slug")
            .get("/v1/projects", &session.access_token)
            .await;
    }
    let invented = reqwest::Method::from_bytes(b"M1134741").unwrap();
    app.client
        .request(invented, app.url("/healthz"))
        .send()
        .await
        .unwrap();
    let reply = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("silo_http_requests_total")
                && l.contains(r#"route="/v1/projects""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no request counter for /v1/projects in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    for name in [
        "silo_http_request_duration_seconds_bucket",
        "silo_registry_lookups_total",
        "silo_registry_cache_hits_total",
        "silo_registry_cache_misses_total",
        "silo_server_connections",
        "silo_server_connection_budget",
        "silo_provisioning_total",
        "silo_tenant_migrations_total",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    // Read when scraped: the one pool opened by the requests above, not a lagging count.
    assert!(
        text.lines().any(|l| l == "silo_tenant_pools_open 1"),
        "{text}"
    );
    let sample = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // The sign-up's lookup missed the cache; the three listings after it hit.
    assert!(sample("silo_registry_cache_hits_total") >= 3.0);
    assert!(sample("silo_registry_cache_misses_total") >= 1.0);
    assert!(
        !text.contains("zebra-unique-slug"),
        "tenant slugs must not become labels"
    );

    // The classic text format unless the scraper asks for OpenMetrics, as Prometheus does.
    let classic = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(reply_type_of(&classic).starts_with("text/plain; version=0.0.4"));
    let classic = classic.text().await.unwrap();
    assert!(
        classic.contains("# TYPE silo_http_requests_total counter"),
        "{classic}"
    );
    assert!(!classic.contains("# EOF"));
    let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let openmetrics = app
        .client
        .get(app.url("/metrics"))
        .header("accept", prometheus)
        .send()
        .await
        .unwrap();
    assert!(reply_type_of(&openmetrics).starts_with("application/openmetrics-text"));
    let openmetrics = openmetrics.text().await.unwrap();
    assert!(openmetrics.contains("# TYPE silo_http_requests counter"));
    assert!(openmetrics.ends_with("# EOF\n"));
}

fn reply_type_of(reply: &reqwest::Response) -> String {
    reply.headers()["content-type"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_past_its_plans_rate_gets_429_while_others_carry_on() {
    let app = spawn_app().await;
    let tight = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "noisy", "plan": "tight"})),
        )
        .await;
    assert_eq!(tight.status, 201);
    app.create_tenant("quiet").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let reply = app
            .tenant("noisy")
            .send(Method::GET, "/v1/projects", None, None)
            .await;
        if reply.status == 429 {
            reply.assert_error(429, "rate_limited");
            retry_after = reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(reply.status);
    }
    assert_eq!(
        &statuses[..3],
        &[401, 401, 401],
        "the burst of 3 is admitted: {statuses:?}"
    );
    assert!(
        statuses[3..].iter().all(|s| *s == 429),
        "then limited: {statuses:?}"
    );
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    let quiet = app
        .tenant("quiet")
        .send(Method::GET, "/v1/projects", None, None)
        .await;
    assert_eq!(
        quiet.status, 401,
        "the quiet tenant is not limited by the noisy one"
    );
}

#[tokio::test]
async fn a_request_still_running_after_the_timeout_is_answered_503_timeout() {
    let app = spawn_app_with(|s| s.http.request_timeout_secs = 1).await;
    app.create_tenant("acme").await;
    // Promise a body and never send it: the handler waits for it until the timeout fires.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: acme.localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            response.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&response).contains("\"timeout\"") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains(r#""code":"timeout""#), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Counted under the route it timed out on, not as an unmatched request.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("silo_http_requests_total")
                && l.contains(r#"route="/v1/auth/login""#)
                && l.contains(r#"status="503""#)),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreadable_registry_makes_readyz_and_uncached_tenants_503() {
    use sqlx::{Connection, Executor};
    let app = spawn_app().await;
    let acme = app
        .create_tenant_with_owner("acme", "owner@acme.com", "owner-password")
        .await;
    app.create_tenant("globex").await;
    let ready = crate::helpers::Reply::send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // The registry's table goes missing behind silo's back (whichever backend holds it).
    sqlx::any::install_default_drivers();
    let mut registry = sqlx::AnyConnection::connect(&app.state.settings.registry_url())
        .await
        .unwrap();
    registry
        .execute("ALTER TABLE tenants RENAME TO tenants_elsewhere")
        .await
        .unwrap();

    let ready = crate::helpers::Reply::send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    // A tenant not in the cache cannot be looked up: retry later, not a server bug.
    let reply = app
        .tenant("globex")
        .send(Method::GET, "/v1/projects", None, None)
        .await;
    reply.assert_unavailable();
    // A tenant already cached is still served meanwhile.
    let projects = app
        .tenant("acme")
        .get("/v1/projects", &acme.access_token)
        .await;
    assert_eq!(projects.status, 200, "{}", projects.body);

    registry
        .execute("ALTER TABLE tenants_elsewhere RENAME TO tenants")
        .await
        .unwrap();
    let ready = crate::helpers::Reply::send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_every_pool() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.tenant("acme")
        .send(Method::GET, "/v1/projects", None, None)
        .await;
    let (addr, state) = (app.addr, app.state.clone());
    state.pools.run_housekeeping().await;
    assert_eq!(state.pools.open_count(), 1);
    let started = Instant::now();
    app.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown did not wait out the grace period"
    );
    state.pools.run_housekeeping().await;
    assert_eq!(state.pools.open_count(), 0);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn the_binary_exits_0_on_sigterm_after_finishing_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    // Two free ports, held together so they differ, and let go only when silo starts.
    let held = [(); 2].map(|()| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let [port, admin_port] = [0, 1].map(|i| held[i].local_addr().unwrap().port());
    let silo = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_silo"));
        command
            .args(args)
            .current_dir(dir.path())
            .env(
                "SILO_CONFIG",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"),
            )
            .env("SILO__DATA_DIR", dir.path().join("data"))
            .env(
                "SILO__TEMPLATES_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tenant_templates"),
            )
            .env(
                "SILO__SERVERS__LOCAL__URL",
                format!("sqlite://{}", dir.path().join("tenants").display()),
            )
            .env("SILO__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("SILO__HTTP__SHUTDOWN_GRACE_SECS", "2")
            .env("SILO__LOG__FORMAT", "json")
            .env("SILO__ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
            // Looks like a number: it must still be used as written, not as 7.
            .env("SILO__ADMIN__TOKEN", "007");
        command
    };
    assert!(silo(&["tenant", "create", "acme"])
        .output()
        .unwrap()
        .status
        .success());
    drop(held);
    let child = silo(&["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "silo serve did not come up");
    // The admin token from the environment is `007` as written, not the number 7; a request
    // about one tenant is logged with it (checked in the logs below).
    let tenants = format!("http://127.0.0.1:{admin_port}/admin/v1/tenants");
    for (path, token, status) in [
        ("", "007", 200),
        ("", "7", 401),
        ("/acme", "007", 200),
        ("/acme/stats", "7", 401),
    ] {
        let reply = client
            .get(format!("{tenants}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.status(),
            status,
            "GET {path:?} with admin token {token:?}"
        );
    }
    let me = client
        .get(format!("{base}/v1/me"))
        .header("host", "acme.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // A request that will never finish: its body never comes. The grace period cuts it off.
    // `100 Continue` comes back once its handler reads the body: by then it is in flight.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let promise = "POST /v1/auth/login HTTP/1.1\r\nHost: acme.localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n";
    stalled.write_all(promise.as_bytes()).await.unwrap();
    let mut continued = [0u8; 25];
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_exact(&mut stalled, &mut continued),
    )
    .await
    .expect("100 Continue within 10 s")
    .unwrap();
    assert!(
        continued.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&continued)
    );
    // A request in flight when the signal arrives: its body is still being sent.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: nobody.localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(b"}").await.unwrap();
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 404"),
        "the in-flight request was answered: {answer}"
    );

    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let logs = String::from_utf8_lossy(&status.stderr);
    assert!(logs.contains("silo stopped"), "{logs}");
    let finished = logs
        .lines()
        .find(|l| l.contains("request finished") && l.contains("/healthz"))
        .expect("a request log line");
    let line: Value = serde_json::from_str(finished).expect("JSON log lines");
    assert!(
        line.to_string().contains("x-request-id") || line.to_string().contains("\"id\""),
        "{line}"
    );
    // The request the grace period cut off still ends with a log line, with its request id.
    let cut_off = logs
        .lines()
        .find(|l| l.contains("request cut off before its answer"))
        .unwrap_or_else(|| panic!("no line for the request cut off:\n{logs}"));
    assert!(
        cut_off.contains(r#""tenant":"acme""#) && cut_off.contains("/v1/auth/login"),
        "{cut_off}"
    );
    drop(stalled);
    // An admin request about one tenant names it, as a tenant request does.
    let admin = logs
        .lines()
        .find(|l| l.contains("request finished") && l.contains("/admin/v1/tenants/{slug}"))
        .expect("the admin request's log line");
    assert!(admin.contains(r#""tenant":"acme""#), "{admin}");
    // Only once the admin token is checked: a refused request names no tenant.
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.contains("request finished")
                && l.contains(r#""status":401"#)
                && l.contains(r#""listener":"admin""#)
        })
        .collect();
    assert_eq!(refused.len(), 2, "{logs}");
    for line in refused {
        assert!(!line.contains(r#""tenant""#), "{line}");
    }
}
