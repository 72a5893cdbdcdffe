//! Answers given before a request's body is read leave the client's keep-alive connection
//! usable (silo drains the body), a body past what silo drains is answered with
//! `Connection: close`, and a client sending its body too slowly cannot hold a connection.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app_with, KeepAlive, TestApp};

/// Requests sent one after another on one connection, for each refusal.
const ROUNDS: usize = 12;
/// What silo reads of a body at most, in these tests.
const BODY_LIMIT: usize = 100_000;

/// A JSON body of about `size` bytes.
fn body(size: usize) -> Vec<u8> {
    format!("{{\"name\":\"{}\"}}", "x".repeat(size)).into_bytes()
}

/// One refusal: the request head, the body, and the answer every round must get (`None` as the
/// code: any of `statuses`, for answers that change as a limit fills).
struct Case {
    what: &'static str,
    head: String,
    body: Vec<u8>,
    statuses: &'static [u16],
    code: Option<&'static str>,
}

/// Sends each case `ROUNDS` times on one keep-alive connection of its own: every round gets
/// its answer, none a connection error, and none is told to close the connection.
async fn assert_connection_survives(addr: std::net::SocketAddr, cases: Vec<Case>) {
    tokio::task::spawn_blocking(move || {
        for case in cases {
            let mut conn = KeepAlive::connect(addr);
            let mut seen = Vec::new();
            for round in 0..ROUNDS {
                let answer = conn.send(&case.head, &case.body).unwrap_or_else(|error| {
                    panic!(
                        "{}: round {round} got a connection error: {error}",
                        case.what
                    )
                });
                let reply = &answer.reply;
                assert!(
                    case.statuses.contains(&reply.status),
                    "{}: round {round} answered {} {}",
                    case.what,
                    reply.status,
                    reply.body
                );
                if let Some(code) = case.code {
                    assert_eq!(reply.code(), code, "{}: round {round}", case.what);
                }
                assert!(
                    !answer.closes,
                    "{}: round {round} closed the connection",
                    case.what
                );
                seen.push(reply.status);
            }
            assert_eq!(
                seen.last(),
                case.statuses.last(),
                "{}: the last rounds answer {:?}",
                case.what,
                seen
            );
        }
    })
    .await
    .unwrap();
}

fn post(path: &str, host: &str, extra: &[&str]) -> String {
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json");
    for line in extra {
        head.push_str("\r\n");
        head.push_str(line);
    }
    head
}

async fn app() -> TestApp {
    spawn_app_with(|settings| settings.http.body_limit_bytes = BODY_LIMIT).await
}

#[tokio::test]
async fn refusals_before_the_body_is_read_keep_the_connection_usable() {
    let app = app().await;
    let acme = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    app.create_tenant("sleepy").await;
    let suspended = app
        .admin(Method::POST, "/admin/v1/tenants/sleepy/suspend", None)
        .await;
    assert_eq!(suspended.status, 200);
    let noisy = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "noisy", "plan": "tight"})),
        )
        .await;
    assert_eq!(noisy.status, 201);
    // `broken`'s seed fails, so the tenant stays `provisioning`.
    let broken = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "unfinished", "plan": "broken"})),
        )
        .await;
    assert_eq!(broken.status, 500, "{}", broken.body);
    let bearer = format!("Authorization: Bearer {}", acme.access_token);
    let large = body(60_000);

    let case = |what: &'static str,
                head: String,
                body: &Vec<u8>,
                statuses: &'static [u16],
                code: Option<&'static str>| Case {
        what,
        head,
        body: body.clone(),
        statuses,
        code,
    };
    let cases = vec![
        case(
            "an unknown tenant",
            post("/v1/projects", "nobody.localhost", &[]),
            &large,
            &[404],
            Some("tenant_not_found"),
        ),
        case(
            "two strategies naming two tenants",
            post("/v1/projects", "acme.localhost", &["X-Tenant: sleepy"]),
            &large,
            &[400],
            Some("tenant_conflict"),
        ),
        case(
            "no bearer token",
            post("/v1/projects", "acme.localhost", &[]),
            &large,
            &[401],
            Some("unauthorized"),
        ),
        case(
            "a suspended tenant",
            post("/v1/projects", "sleepy.localhost", &[]),
            &large,
            &[403],
            Some("tenant_suspended"),
        ),
        case(
            "a path no route serves",
            post("/v1/nowhere", "acme.localhost", &[&bearer]),
            &large,
            &[404],
            Some("not_found"),
        ),
        case(
            "a method the route does not serve",
            post("/v1/projects", "acme.localhost", &[&bearer]).replacen("POST", "PUT", 1),
            &large,
            &[405],
            Some("method_not_allowed"),
        ),
        case(
            "a body over the limit",
            post("/v1/projects", "acme.localhost", &[&bearer]),
            &body(BODY_LIMIT + 50_000),
            &[413],
            Some("payload_too_large"),
        ),
        case(
            "a compressed body",
            post(
                "/v1/projects",
                "acme.localhost",
                &[&bearer, "Content-Encoding: gzip"],
            ),
            &large,
            &[415],
            Some("unsupported_media_type"),
        ),
        case(
            "a body that is not JSON",
            post("/v1/projects", "acme.localhost", &[&bearer])
                .replace("application/json", "text/plain"),
            &large,
            &[415],
            Some("unsupported_media_type"),
        ),
        case(
            "a tenant over its rate limit",
            post("/v1/projects", "noisy.localhost", &[]),
            &large,
            &[401, 429],
            None,
        ),
        case(
            "a tenant still being provisioned",
            post("/v1/projects", "unfinished.localhost", &[]),
            &large,
            &[503],
            Some("tenant_unavailable"),
        ),
    ];
    assert_connection_survives(app.addr, cases).await;

    let admin_host = app.admin_addr.to_string();
    let admin_token = format!("Authorization: Bearer {}", crate::helpers::ADMIN_TOKEN);
    let admin_cases = vec![
        case(
            "the admin API without its token",
            post("/admin/v1/tenants", &admin_host, &[]),
            &large,
            &[401],
            Some("unauthorized"),
        ),
        case(
            "an admin path no route serves",
            post("/admin/v1/nowhere", &admin_host, &[&admin_token]),
            &large,
            &[404],
            Some("not_found"),
        ),
    ];
    assert_connection_survives(app.admin_addr, admin_cases).await;

    // The connections served every refusal and every tenant is still served.
    let reply = app.tenant("acme").get("/v1/me", &acme.access_token).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_body_longer_than_silo_drains_is_refused_with_connection_close() {
    let app = app().await;
    let declared = 50 * BODY_LIMIT;
    let head = post("/v1/projects", "nobody.localhost", &[]);
    tokio::task::spawn_blocking(move || {
        let mut conn = KeepAlive::connect(app.addr);
        // The head and the start of a body far past the limit; the rest is never sent.
        let start = format!("{head}\r\nContent-Length: {declared}\r\n\r\n{{\"name\":\"");
        conn.write(start.as_bytes()).unwrap();
        let answer = conn.read_answer().expect("an answer");
        answer.reply.assert_error(404, "tenant_not_found");
        assert!(answer.closes, "the answer does not say Connection: close");
        assert!(conn.is_closed_by_server(), "the connection stays open");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_body_sent_slower_than_the_request_timeout_cannot_hold_the_connection() {
    let app = spawn_app_with(|settings| settings.http.request_timeout_secs = 1).await;
    let acme = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let bearer = format!("Authorization: Bearer {}", acme.access_token);
    // One request a handler is reading, one refused before its body: both stall part way.
    let stalled = [
        (
            post("/v1/projects", "acme.localhost", &[&bearer]),
            503,
            "timeout",
        ),
        (
            post("/v1/projects", "nobody.localhost", &[]),
            404,
            "tenant_not_found",
        ),
    ];
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        for (head, status, code) in stalled {
            let mut conn = KeepAlive::connect(addr);
            let start = format!("{head}\r\nContent-Length: 1000\r\n\r\n{{\"name\":\"");
            conn.write(start.as_bytes()).unwrap();
            let answer = conn
                .read_answer()
                .expect("an answer despite the stalled body");
            answer.reply.assert_error(status, code);
            assert!(answer.closes, "{code}: no Connection: close");
            assert!(
                conn.is_closed_by_server(),
                "{code}: the connection stays open"
            );
        }
    })
    .await
    .unwrap();
}
