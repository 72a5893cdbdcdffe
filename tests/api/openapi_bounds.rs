//! The OpenAPI documents are as strict as the server, no more and no less, so a client generated
//! from them is never refused for a value they allow. Driven by the documents themselves: for
//! every request body and query parameter of both, each documented bound is tried through real
//! requests (a value at the bound is accepted, one past it is `422 validation_failed`), as are
//! every enum value and one outside the set, `null` where it is (or is not) allowed, each
//! required field left out, fields that come together, an unknown field, and a value against
//! each pattern. An operation or bounded field without a fixture here fails the test, so a new
//! field cannot be documented, or left undocumented, unnoticed.

use std::sync::atomic::{AtomicU32, Ordering};

use regex::Regex;
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::helpers::{spawn_app_with, team, Reply, TestApp};

const SLUG: &str = "bounds";

/// The tenant the tenant API is tried on, with a team, a project and a fresh number per value.
struct Ctx {
    app: TestApp,
    owner: String,
    owner_email: String,
    member_id: String,
    project_id: String,
    next: AtomicU32,
}

impl Ctx {
    fn n(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A request the server accepts, and the answer that says so.
struct Valid {
    path: String,
    token: Option<String>,
    body: Option<Value>,
    accepted: u16,
}

/// One operation's fixture: a valid request, made fresh for each try (each may create a user,
/// an invitation or a tenant, so values are unique).
async fn valid_request(ctx: &Ctx, method: &str, path: &str) -> Option<Valid> {
    let n = ctx.n();
    let owner = Some(ctx.owner.clone());
    let tenant = |path: &str, token: Option<String>, body: Value, accepted: u16| Valid {
        path: path.to_owned(),
        token,
        body: Some(body),
        accepted,
    };
    let valid = match (method, path) {
        ("post", "/v1/auth/signup") => tenant(
            path,
            None,
            json!({"email": format!("signup{n}@bounds.test"), "password": "a-password"}),
            201,
        ),
        // Only lengths are checked at sign-in; a value within them is a failed sign-in.
        ("post", "/v1/auth/login") => tenant(
            path,
            None,
            json!({"email": "nobody@bounds.test", "password": "not-the-password"}),
            401,
        ),
        ("post", "/v1/auth/refresh") => tenant(
            path,
            None,
            json!({"refresh_token": refresh_token(ctx).await}),
            200,
        ),
        ("post", "/v1/auth/logout") => tenant(
            path,
            None,
            json!({"refresh_token": refresh_token(ctx).await}),
            204,
        ),
        ("post", "/v1/projects") => tenant(path, owner, json!({"name": "a project"}), 201),
        ("patch", "/v1/projects/{id}") => tenant(
            &format!("/v1/projects/{}", ctx.project_id),
            owner,
            json!({}),
            200,
        ),
        ("patch", "/v1/members/{id}") => tenant(
            &format!("/v1/members/{}", ctx.member_id),
            owner,
            json!({"role": "member"}),
            200,
        ),
        ("post", "/v1/invitations") => tenant(
            path,
            owner,
            json!({"email": format!("invited{n}@bounds.test"), "role": "member"}),
            201,
        ),
        ("post", "/v1/invitations/accept") => {
            let invited = ctx
                .app
                .tenant(SLUG)
                .post(
                    "/v1/invitations",
                    Some(&ctx.owner),
                    json!({"email": format!("accepts{n}@bounds.test"), "role": "viewer"}),
                )
                .await;
            assert_eq!(invited.status, 201, "{}", invited.body);
            let token = invited.body["token"].clone();
            tenant(
                path,
                None,
                json!({"token": token, "password": "a-password"}),
                201,
            )
        }
        ("post", "/v1/api-tokens") => tenant(
            path,
            owner,
            json!({"name": "ci", "scopes": ["projects:read"]}),
            201,
        ),
        ("get", "/v1/projects" | "/v1/members" | "/v1/audit" | "/v1/api-tokens") => Valid {
            path: path.to_owned(),
            token: owner,
            body: None,
            accepted: 200,
        },
        ("post", "/admin/v1/tenants") => {
            tenant(path, None, json!({"slug": slug_of_len(12, n)}), 201)
        }
        ("get", "/admin/v1/tenants" | "/admin/v1/webhooks/deliveries") => Valid {
            path: path.to_owned(),
            token: None,
            body: None,
            accepted: 200,
        },
        ("post", "/admin/v1/tenants/{slug}/domains") => tenant(
            &format!("/admin/v1/tenants/{SLUG}/domains"),
            None,
            json!({"domain": domain_of_len(20, n)}),
            201,
        ),
        ("post", "/admin/v1/tenants/{slug}/support-sessions") => tenant(
            &format!("/admin/v1/tenants/{SLUG}/support-sessions"),
            None,
            json!({"email": ctx.owner_email, "reason": "ticket 42"}),
            201,
        ),
        ("post", "/admin/v1/migrations") => tenant(path, None, json!({}), 202),
        // The one server there is, its own: refused as it stands, whatever else is checked.
        ("post", "/admin/v1/tenants/{slug}/move") => tenant(
            &format!("/admin/v1/tenants/{SLUG}/move"),
            None,
            json!({"to": "local"}),
            409,
        ),
        ("get", "/admin/v1/usage") => Valid {
            path: path.to_owned(),
            token: None,
            body: None,
            accepted: 200,
        },
        ("post", "/admin/v1/keys/rotate") => tenant(path, None, json!({}), 200),
        _ => return None,
    };
    Some(valid)
}

/// A value of exactly `len` characters for `field`, valid in every other respect (unique by
/// `n` where the server wants it unique); `None` when this file has no generator for it.
fn value_of_len(field: &str, len: usize, n: u32) -> Option<String> {
    Some(match field {
        "name" | "reason" => "x".repeat(len),
        "description" => "d".repeat(len),
        "password" | "owner_password" => "p".repeat(len),
        "email" | "owner_email" => email_of_len(len, n),
        "slug" | "tenants" => slug_of_len(len, n),
        "domain" | "domains" => domain_of_len(len, n),
        _ => return None,
    })
}

/// A value `field`'s pattern refuses, at a length its bounds allow.
fn pattern_mismatch(field: &str) -> Option<&'static str> {
    Some(match field {
        "name" | "reason" => "   ",
        "email" | "owner_email" => "no-at-sign.example.com",
        "slug" | "tenants" => "Not_A_Slug",
        "domain" | "domains" => "under_score.example.com",
        _ => return None,
    })
}

fn email_of_len(len: usize, n: u32) -> String {
    let tag = format!("u{n}");
    let local = format!("{tag}{}", "x".repeat((len - 7).min(64) - tag.len()));
    let domain_len = len - local.len() - 1;
    format!("{local}@{}.test", "d".repeat(domain_len - 5))
}

fn slug_of_len(len: usize, n: u32) -> String {
    let tag = format!("s{}", radix36(n, 2));
    if len <= tag.len() {
        return tag[..len].to_owned();
    }
    format!("{tag}{}", "a".repeat(len - tag.len()))
}

fn radix36(mut n: u32, width: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.len() < width {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A DNS name of `len` characters in labels of at most 63, ending `.test`.
fn domain_of_len(len: usize, n: u32) -> String {
    let body = len - ".test".len();
    let labels = (body + 1).div_ceil(64);
    let letters = body - (labels - 1);
    let mut parts: Vec<String> = (0..labels)
        .map(|i| "a".repeat(letters / labels + usize::from(i < letters % labels)))
        .collect();
    let tag = format!("d{n}");
    parts[0].replace_range(..tag.len(), &tag);
    format!("{}.test", parts.join("."))
}

async fn refresh_token(ctx: &Ctx) -> String {
    let reply = ctx
        .app
        .tenant(SLUG)
        .try_login(&ctx.owner_email, "owner-password")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["refresh_token"].as_str().unwrap().to_owned()
}

/// What must be true before a request with this body can be accepted, made true: the user of a
/// support session exists, the tenants of a target group exist. A value the server refuses
/// stays refused, so nothing here turns a refusal into a success.
async fn arrange(ctx: &Ctx, path: &str, body: &Value) {
    if path.ends_with("/support-sessions") {
        if let Some(email) = body["email"].as_str() {
            ctx.app
                .tenant(SLUG)
                .post(
                    "/v1/auth/signup",
                    None,
                    json!({"email": email, "password": "a-password"}),
                )
                .await;
        }
    }
    if path == "/admin/v1/migrations" {
        for slug in body["tenants"].as_array().into_iter().flatten() {
            ctx.app
                .admin(
                    Method::POST,
                    "/admin/v1/tenants",
                    Some(json!({"slug": slug})),
                )
                .await;
        }
    }
}

/// One try: the operation, what was varied, the request's body (or query) and whether the
/// document allows it.
struct Try {
    what: String,
    body: Option<Value>,
    query: Option<String>,
    allowed: bool,
}

async fn send(ctx: &Ctx, method: &str, valid: &Valid, attempt: &Try) -> Reply {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let path = match &attempt.query {
        Some(query) => format!("{}?{query}", valid.path),
        None => valid.path.clone(),
    };
    if let Some(body) = &attempt.body {
        arrange(ctx, &valid.path, body).await;
    }
    if path.starts_with("/admin/") {
        ctx.app.admin(method, &path, attempt.body.clone()).await
    } else {
        ctx.app
            .tenant(SLUG)
            .send(method, &path, valid.token.as_deref(), attempt.body.clone())
            .await
    }
}

/// The schema behind a `$ref`, with the referring schema's own keywords kept.
fn resolve(doc: &Value, schema: &Value) -> Value {
    let Some(reference) = schema["$ref"].as_str() else {
        return schema.clone();
    };
    let name = reference.trim_start_matches("#/components/schemas/");
    let mut resolved = doc["components"]["schemas"][name].clone();
    if let (Some(target), Some(own)) = (resolved.as_object_mut(), schema.as_object()) {
        for (key, value) in own.iter().filter(|(k, _)| *k != "$ref") {
            target.insert(key.clone(), value.clone());
        }
    }
    resolved
}

fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn usize_of(schema: &Value, key: &str) -> Option<usize> {
    schema[key].as_u64().map(|n| n as usize)
}

/// The values to try for one field: `(what, value, allowed by the document)`. Panics when the
/// field is bounded and this file cannot make values for it.
fn field_values(
    doc: &Value,
    op: &str,
    field: &str,
    schema: &Value,
    n: &dyn Fn() -> u32,
) -> Vec<(String, Value, bool)> {
    let schema = resolve(doc, schema);
    let kinds = types(&schema);
    let mut tries = Vec::new();
    if let Some(values) = schema["enum"].as_array() {
        for value in values {
            tries.push((format!("enum value {value}"), value.clone(), true));
        }
        tries.push((
            "a value outside the enum".into(),
            json!("not-a-value"),
            false,
        ));
    }
    if kinds.iter().any(|t| t == "string") && schema["enum"].is_null() {
        let min = usize_of(&schema, "minLength");
        let max = usize_of(&schema, "maxLength");
        let pattern = schema["pattern"].as_str();
        let bounded = min.is_some() || max.is_some() || pattern.is_some();
        let make = |len: usize| {
            value_of_len(field, len, n()).unwrap_or_else(|| {
                panic!("{op}: `{field}` is bounded in the document but has no value fixture")
            })
        };
        let matches = |value: &str| {
            pattern.is_none_or(|p| Regex::new(p).expect("a valid pattern").is_match(value))
        };
        if bounded {
            let mut lengths = Vec::new();
            if let Some(min) = min {
                lengths.push((min, true));
                if min > 0 {
                    lengths.push((min - 1, false));
                }
            }
            if let Some(max) = max {
                lengths.push((max, true));
                lengths.push((max + 1, false));
            }
            for (len, allowed) in lengths {
                let value = make(len);
                assert_eq!(value.chars().count(), len, "{op}: fixture for `{field}`");
                if allowed {
                    assert!(
                        matches(&value),
                        "{op}: the fixture for `{field}` does not match its pattern: {value}"
                    );
                }
                tries.push((format!("length {len}"), json!(value), allowed));
            }
        }
        if pattern.is_some() {
            let mismatch = pattern_mismatch(field).unwrap_or_else(|| {
                panic!("{op}: `{field}` has a pattern but no fixture for a value outside it")
            });
            assert!(
                !matches(mismatch),
                "{op}: `{mismatch}` matches `{field}`'s pattern"
            );
            tries.push(("a value outside the pattern".into(), json!(mismatch), false));
        }
    }
    if kinds.iter().any(|t| t == "integer" || t == "number") {
        if let Some(min) = schema["minimum"].as_i64() {
            tries.push((format!("minimum {min}"), json!(min), true));
            tries.push((
                format!("below the minimum, {}", min - 1),
                json!(min - 1),
                false,
            ));
        }
        if let Some(max) = schema["maximum"].as_i64() {
            tries.push((format!("maximum {max}"), json!(max), true));
            tries.push((
                format!("above the maximum, {}", max + 1),
                json!(max + 1),
                false,
            ));
        }
    }
    if kinds.iter().any(|t| t == "array") {
        let items = &schema["items"];
        let item_values = field_values(doc, op, field, items, n);
        for (what, value, allowed) in item_values {
            tries.push((format!("one item, {what}"), json!([value]), allowed));
        }
        if let Some(min) = usize_of(&schema, "minItems") {
            if min > 0 {
                tries.push((format!("{} items", min - 1), json!([]), false));
            }
        }
    }
    tries
}

/// Every try the document calls for on one operation's body, around a valid `base`.
fn body_tries(
    doc: &Value,
    op: &str,
    schema: &Value,
    base: &Value,
    n: &dyn Fn() -> u32,
) -> Vec<Try> {
    let schema = resolve(doc, schema);
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let together: Map<String, Value> = schema["dependentRequired"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // A field set on its own brings the fields it needs, at a valid value.
    let with = |field: &str, value: Value| -> Value {
        let mut body = base.clone();
        body[field] = value.clone();
        if !value.is_null() {
            for other in together
                .get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let other = other.as_str().unwrap();
                if body.get(other).is_none_or(Value::is_null) {
                    body[other] = default_value(other, n());
                }
            }
        }
        body
    };
    let mut tries = vec![Try {
        what: "the fixture's valid body".into(),
        body: Some(base.clone()),
        query: None,
        allowed: true,
    }];
    for (field, property) in &properties {
        for (what, value, allowed) in field_values(doc, op, field, property, n) {
            tries.push(Try {
                what: format!("`{field}`: {what}"),
                body: Some(with(field, value)),
                query: None,
                allowed,
            });
        }
        let nullable = types(&resolve(doc, property)).iter().any(|t| t == "null");
        tries.push(Try {
            what: format!("`{field}`: null"),
            body: Some(with(field, Value::Null)),
            query: None,
            allowed: nullable && !required.contains(&field.as_str()),
        });
    }
    for field in &required {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(*field);
        tries.push(Try {
            what: format!("required `{field}` left out"),
            body: Some(body),
            query: None,
            allowed: false,
        });
    }
    for (field, needs) in &together {
        for other in needs.as_array().into_iter().flatten() {
            let mut body = base.clone();
            body[field.as_str()] = default_value(field, n());
            body.as_object_mut()
                .unwrap()
                .remove(other.as_str().unwrap());
            tries.push(Try {
                what: format!("`{field}` without {other}"),
                body: Some(body),
                query: None,
                allowed: false,
            });
        }
    }
    if schema["additionalProperties"] == false {
        let mut body = base.clone();
        body["not_a_field"] = json!(1);
        tries.push(Try {
            what: "an unknown field".into(),
            body: Some(body),
            query: None,
            allowed: false,
        });
    }
    tries
}

/// A valid value of `field` where a fixture's base leaves it out.
fn default_value(field: &str, n: u32) -> Value {
    match field {
        "owner_email" => json!(format!("owner{n}@bounds.test")),
        "owner_password" => json!("owner-password"),
        other => panic!("no default value for `{other}`"),
    }
}

/// Every try the document calls for on one operation's query parameters.
fn query_tries(doc: &Value, op: &str, parameters: &[Value], n: &dyn Fn() -> u32) -> Vec<Try> {
    let mut tries = Vec::new();
    for parameter in parameters.iter().filter(|p| p["in"] == "query") {
        let name = parameter["name"].as_str().unwrap();
        for (what, value, allowed) in field_values(doc, op, name, &parameter["schema"], n) {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            tries.push(Try {
                what: format!("`{name}`: {what}"),
                body: None,
                query: Some(format!("{name}={text}")),
                allowed,
            });
        }
    }
    tries
}

/// Runs every try the document calls for and returns the ones the server answered otherwise.
async fn check_document(ctx: &Ctx, doc: &Value) -> (usize, Vec<String>) {
    let mut wrong = Vec::new();
    let mut count = 0;
    let n = || ctx.n();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let op = format!("{} {path}", method.to_uppercase());
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let bounded_query = !query_tries(doc, &op, &parameters, &n).is_empty();
            if body.is_null() && !bounded_query {
                continue;
            }
            let Some(first) = valid_request(ctx, method, path).await else {
                panic!("{op} takes a body or bounded parameters, but has no fixture here");
            };
            let tries = if body.is_null() {
                query_tries(doc, &op, &parameters, &n)
            } else {
                body_tries(doc, &op, body, first.body.as_ref().unwrap(), &n)
            };
            for attempt in tries {
                // Each try on a fresh valid request: a value accepted once may not be twice.
                let valid = valid_request(ctx, method, path).await.unwrap();
                let attempt = match (&attempt.body, &valid.body) {
                    (Some(body), Some(fresh)) => Try {
                        body: Some(refresh_body(body, first.body.as_ref().unwrap(), fresh)),
                        ..attempt
                    },
                    _ => attempt,
                };
                let reply = send(ctx, method, &valid, &attempt).await;
                count += 1;
                let expected = if attempt.allowed { valid.accepted } else { 422 };
                let right = reply.status == expected
                    && (attempt.allowed || reply.code() == "validation_failed");
                if !right {
                    wrong.push(format!(
                        "{op}, {}: {} {} (expected {expected})",
                        attempt.what, reply.status, reply.body
                    ));
                }
            }
        }
    }
    (count, wrong)
}

/// `body` made from the first base, with the fields it kept from that base taken from `fresh`:
/// the values under test stay, the unique ones (a new slug, email or token) are renewed.
fn refresh_body(body: &Value, first: &Value, fresh: &Value) -> Value {
    let mut body = body.clone();
    if let (Some(fields), Some(first), Some(fresh)) =
        (body.as_object_mut(), first.as_object(), fresh.as_object())
    {
        for (key, value) in fields.iter_mut() {
            if first.get(key) == Some(value) {
                if let Some(renewed) = fresh.get(key) {
                    *value = renewed.clone();
                }
            }
        }
    }
    body
}

async fn context() -> Ctx {
    // No `broken` plan: every plan the admin document lists must provision.
    let app = spawn_app_with(|settings| {
        std::fs::remove_dir_all(settings.templates_dir.join("broken")).unwrap();
        std::fs::remove_dir_all(settings.templates_dir.join("tight")).unwrap();
    })
    .await;
    let team = team(&app, SLUG).await;
    let me = app
        .tenant(SLUG)
        .get("/v1/me", &team.member.access_token)
        .await;
    let member_id = me.body["id"].as_str().unwrap().to_owned();
    let project_id = app
        .tenant(SLUG)
        .create_project(&team.owner.access_token, "bounded")
        .await;
    Ctx {
        owner: team.owner.access_token.clone(),
        owner_email: format!("owner@{SLUG}.test"),
        member_id,
        project_id,
        app,
        next: AtomicU32::new(1),
    }
}

#[tokio::test]
async fn every_documented_bound_is_the_servers_own_on_both_listeners() {
    let ctx = context().await;
    let tenant_doc: Value = ctx
        .app
        .client
        .get(ctx.app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_doc = ctx
        .app
        .admin(Method::GET, "/admin/v1/openapi.json", None)
        .await
        .body;
    let mut tried = 0;
    let mut wrong = Vec::new();
    for doc in [&tenant_doc, &admin_doc] {
        let (count, mismatches) = check_document(&ctx, doc).await;
        tried += count;
        wrong.extend(mismatches);
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} tries were answered otherwise than the documents say:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The documents really carry the contract's bounds (a document with none would pass above).
    let signup = &tenant_doc["components"]["schemas"]["SignupBody"]["properties"];
    assert_eq!(signup["password"]["minLength"], 8);
    assert_eq!(signup["password"]["maxLength"], 1024);
    assert_eq!(signup["email"]["maxLength"], 254);
    let project = &tenant_doc["components"]["schemas"]["CreateProject"]["properties"];
    assert_eq!(project["name"]["maxLength"], 200);
    assert_eq!(project["description"]["maxLength"], 2000);
    let create = &admin_doc["components"]["schemas"]["CreateTenant"]["properties"];
    assert_eq!(create["plan"]["enum"], json!(["free", "pro", null]));
    assert!(tried > 150, "only {tried} tries");
}

#[test]
fn value_fixtures_have_the_length_asked_for() {
    for len in [3, 12, 63, 64] {
        assert_eq!(slug_of_len(len, 7).len(), len);
    }
    for len in [20, 253, 254] {
        let domain = domain_of_len(len, 12345);
        assert_eq!(domain.len(), len, "{domain}");
        assert!(
            domain.split('.').all(|l| (1..=63).contains(&l.len())),
            "{domain}"
        );
    }
    for len in [254, 255] {
        assert_eq!(email_of_len(len, 99).len(), len);
    }
}
