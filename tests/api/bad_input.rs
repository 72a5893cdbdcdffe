//! Whatever a client sends, a mistake is a 4xx in the error shape: never a panic, a hang or a 500.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{raw_request, spawn_app, spawn_app_with, Reply, TestApp};

/// An app with tenant `acme` and its owner's access token.
async fn acme() -> (TestApp, String) {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.com", "owner-password")
        .await;
    (app, owner.access_token)
}

/// `POST /v1/projects` at acme with a raw body and content type.
async fn post_raw(app: &TestApp, token: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let mut request = app
        .request(Method::POST, "/v1/projects")
        .header("host", "acme.localhost")
        .bearer_auth(token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Reply::send(request).await
}

#[tokio::test]
async fn malformed_json_is_bad_request() {
    let (app, token) = acme().await;
    for body in [
        &b"{\"name\":"[..],
        b"not json",
        b"{\"name\": \"x\",}",
        b"",
        b"\xff\xfe",
    ] {
        post_raw(&app, &token, Some("application/json"), body.to_vec())
            .await
            .assert_error(400, "bad_request");
    }
    // Deep nesting is refused (as the wrong type, or by the parser's recursion limit), it
    // never exhausts the stack.
    for deep in [
        format!("{{\"name\": {}", "[".repeat(100_000)),
        "[".repeat(100_000),
        "{\"a\":".repeat(50_000),
    ] {
        let reply = post_raw(&app, &token, Some("application/json"), deep.into_bytes()).await;
        let code = if reply.status == 400 {
            "bad_request"
        } else {
            "validation_failed"
        };
        reply.assert_error(if reply.status == 400 { 400 } else { 422 }, code);
    }
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_unsupported_media_type() {
    let (app, token) = acme().await;
    let body = br#"{"name": "x"}"#.to_vec();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        post_raw(&app, &token, content_type, body.clone())
            .await
            .assert_error(415, "unsupported_media_type");
    }
    // Parameters and the +json suffix are still JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let ok = post_raw(&app, &token, Some(content_type), body.clone()).await;
        assert_eq!(ok.status, 201, "{content_type}: {}", ok.body);
    }
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_validation_failures() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    for body in [
        json!({"name": "x", "colour": "red"}),
        json!({"name": 5}),
        json!({"name": null}),
        json!({"description": "no name"}),
        json!(["name"]),
        json!("name"),
    ] {
        client
            .post("/v1/projects", Some(&token), body.clone())
            .await
            .assert_error(422, "validation_failed");
    }
    let id = client.create_project(&token, "p").await;
    client
        .patch(
            &format!("/v1/projects/{id}"),
            &token,
            json!({"owner_id": "me"}),
        )
        .await
        .assert_error(422, "validation_failed");
    app.admin(
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"slug": "globex", "tier": "gold"})),
    )
    .await
    .assert_error(422, "validation_failed");
}

#[tokio::test]
async fn a_body_over_the_limit_is_payload_too_large() {
    let app = spawn_app_with(|s| s.http.body_limit_bytes = 1024).await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.com", "owner-password")
        .await;
    let big = json!({"name": "x", "description": "d".repeat(1500)});
    app.tenant("acme")
        .post("/v1/projects", Some(&owner.access_token), big.clone())
        .await
        .assert_error(413, "payload_too_large");
    app.admin(
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"slug": "globex", "name": "n".repeat(1500)})),
    )
    .await
    .assert_error(413, "payload_too_large");
    // Just under the limit is read (and then judged on its merits).
    let small = json!({"name": "x", "description": "d".repeat(900)});
    let reply = app
        .tenant("acme")
        .post("/v1/projects", Some(&owner.access_token), small)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn a_body_over_the_default_mebibyte_is_payload_too_large() {
    let (app, token) = acme().await;
    let body = json!({"name": "x", "description": "d".repeat(1_100_000)});
    post_raw(
        &app,
        &token,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
    .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn over_long_names_and_descriptions_are_refused_and_the_limits_themselves_accepted() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    for body in [
        json!({"name": "n".repeat(201)}),
        json!({"name": "é".repeat(201)}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x", "description": "d".repeat(2001)}),
    ] {
        client
            .post("/v1/projects", Some(&token), body)
            .await
            .assert_error(422, "validation_failed");
    }
    // The limits count characters, not bytes.
    for body in [
        json!({"name": "é".repeat(200), "description": "ü".repeat(2000)}),
        json!({"name": "n".repeat(200), "description": "d".repeat(2000)}),
    ] {
        let reply = client.post("/v1/projects", Some(&token), body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let id = client.create_project(&token, "short").await;
    let path = format!("/v1/projects/{id}");
    client
        .patch(&path, &token, json!({"name": "n".repeat(201)}))
        .await
        .assert_error(422, "validation_failed");
    client
        .patch(&path, &token, json!({"description": "d".repeat(2001)}))
        .await
        .assert_error(422, "validation_failed");
    let unchanged = client.get(&path, &token).await;
    assert_eq!(unchanged.body["name"], "short");
}

#[tokio::test]
async fn a_compressed_body_is_unsupported_media_type() {
    let (app, token) = acme().await;
    // Labelled gzip but sent plain: read as it stands, it would be taken for valid JSON.
    for encoding in ["gzip", "br", "deflate"] {
        let reply = Reply::send(
            app.request(Method::POST, "/v1/projects")
                .header("host", "acme.localhost")
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .bearer_auth(&token)
                .body(r#"{"name": "x"}"#),
        )
        .await;
        reply.assert_error(415, "unsupported_media_type");
    }
    // Every coding counts, in one header or several.
    for codings in [vec!["identity, gzip"], vec!["identity", "gzip"]] {
        let mut request = app
            .request(Method::POST, "/v1/projects")
            .header("host", "acme.localhost")
            .header("content-type", "application/json")
            .bearer_auth(&token)
            .body(r#"{"name": "x"}"#);
        for coding in codings {
            request = request.header("content-encoding", coding);
        }
        Reply::send(request)
            .await
            .assert_error(415, "unsupported_media_type");
    }
    let list = app.tenant("acme").get("/v1/projects", &token).await;
    assert_eq!(list.body["data"], json!([]), "nothing was created");
    let plain = Reply::send(
        app.request(Method::POST, "/v1/projects")
            .header("host", "acme.localhost")
            .header("content-type", "application/json")
            .header("content-encoding", "identity")
            .bearer_auth(&token)
            .body(r#"{"name": "x"}"#),
    )
    .await;
    assert_eq!(plain.status, 201, "{}", plain.body);
}

#[tokio::test]
async fn two_host_headers_are_a_bad_request_and_an_absolute_target_names_the_host() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    // Either Host alone would resolve: together they are ambiguous (RFC 9112).
    raw_request(
        app.addr,
        "GET /v1/me HTTP/1.1",
        &[b"Host: acme.localhost", b"Host: globex.localhost"],
    )
    .await
    .assert_error(400, "bad_request");
    // The request target's host wins over the Host header (RFC 9112, section 3.2.2). acme is
    // suspended, so which tenant was resolved shows in the answer.
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    for (target, host, status, code) in [
        (
            "http://globex.localhost/v1/me",
            "acme.localhost",
            401,
            "unauthorized",
        ),
        (
            "http://acme.localhost:8080/v1/me",
            "globex.localhost",
            403,
            "tenant_suspended",
        ),
        (
            "http://nobody.localhost/v1/me",
            "globex.localhost",
            404,
            "tenant_not_found",
        ),
    ] {
        let host = format!("Host: {host}");
        raw_request(
            app.addr,
            &format!("GET {target} HTTP/1.1"),
            &[host.as_bytes()],
        )
        .await
        .assert_error(status, code);
    }
}

#[tokio::test]
async fn odd_host_headers_are_client_errors_in_the_error_shape() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let long_host = format!("Host: {}.localhost", "a".repeat(8000));
    let cases: Vec<(&str, Vec<&[u8]>)> = vec![
        ("empty Host", vec![b"Host: "]),
        ("only a port", vec![b"Host: :8080"]),
        ("dots", vec![b"Host: .."]),
        ("a dot before the base", vec![b"Host: .localhost"]),
        ("very long", vec![long_host.as_bytes()]),
        ("non-ASCII Host", vec!["Host: acmé.localhost".as_bytes()]),
        ("Latin-1 Host", vec![b"Host: acm\xe9.localhost"]),
        (
            "non-UTF-8 X-Tenant",
            vec![b"Host: 127.0.0.1", b"X-Tenant: \xff\xfeacme"],
        ),
        (
            "non-ASCII X-Tenant",
            vec![b"Host: 127.0.0.1", "X-Tenant: acmé".as_bytes()],
        ),
        ("empty X-Tenant", vec![b"Host: 127.0.0.1", b"X-Tenant: "]),
    ];
    for (what, headers) in cases {
        let reply = raw_request(app.addr, "GET /v1/me HTTP/1.1", &headers).await;
        assert!(
            (400..500).contains(&reply.status),
            "{what}: status {}",
            reply.status
        );
        let code = reply.code().to_owned();
        reply.assert_error(reply.status, &code);
        assert!(
            ["tenant_not_found", "bad_request", "tenant_conflict"].contains(&code.as_str()),
            "{what}: {}",
            reply.body
        );
    }
    // HTTP/1.0 may leave the Host out altogether.
    raw_request(app.addr, "GET /v1/me HTTP/1.0", &[])
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn a_wrong_method_is_method_not_allowed_in_the_error_shape() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    for (method, path) in [
        (Method::PUT, "/v1/projects"),
        (Method::DELETE, "/v1/me"),
        (Method::POST, "/v1/me"),
        (Method::GET, "/v1/auth/login"),
        (Method::DELETE, "/healthz"),
    ] {
        client
            .send(method.clone(), path, Some(&token), None)
            .await
            .assert_error(405, "method_not_allowed");
    }
    app.admin(Method::PUT, "/admin/v1/tenants", None)
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn a_method_not_allowed_reply_says_which_methods_are() {
    let (app, token) = acme().await;
    let reply = app
        .tenant("acme")
        .send(Method::PUT, "/v1/projects", Some(&token), None)
        .await;
    reply.assert_error(405, "method_not_allowed");
    let allow = reply
        .headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow:?}"
    );
}

#[tokio::test]
async fn bad_pagination_parameters_are_validation_failures_naming_the_field() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=%27%20OR%201%3D1%20--", "cursor"),
    ] {
        let reply = client.get(&format!("/v1/projects?{query}"), &token).await;
        reply.assert_error(422, "validation_failed");
        assert!(
            reply.body["error"]["fields"][field].is_string(),
            "?{query}: {}",
            reply.body
        );
    }
    for query in ["limit=0", "limit=101", "cursor=garbage", "status=sleeping"] {
        app.admin(Method::GET, &format!("/admin/v1/tenants?{query}"), None)
            .await
            .assert_error(422, "validation_failed");
    }
    for query in ["limit=1", "limit=100", "cursor="] {
        let reply = client.get(&format!("/v1/projects?{query}"), &token).await;
        assert_eq!(reply.status, 200, "?{query}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_gets_the_json_error_shape() {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "o@acme.test", "owner-password")
        .await;
    let reply = app
        .tenant("acme")
        .get("/v1/projects/%FF", &owner.access_token)
        .await;
    reply.assert_error(404, "not_found");
    let admin = app
        .admin(reqwest::Method::GET, "/admin/v1/tenants/%FF", None)
        .await;
    admin.assert_error(404, "not_found");
}
