//! The role matrix of the API contract: each role against each route.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{invite_and_accept, spawn_app, team, TestApp};

const SLUG: &str = "acme";

/// Expected status for owner, admin, member, viewer.
type Expect = [u16; 4];

struct Case {
    name: &'static str,
    method: Method,
    /// Builds the path (and body) afresh for each call, so mutating calls have their own target.
    target: fn() -> (&'static str, Option<Value>),
    expect: Expect,
}

/// Runs one call per role, each against a fresh object where the route changes something.
async fn check(app: &TestApp, team: &crate::helpers::Team, case: &Case, fresh: impl AsyncFresh) {
    for ((role, session), expected) in team.by_role().into_iter().zip(case.expect) {
        let (template, body) = (case.target)();
        let path = match template.contains("{id}") {
            true => template.replace("{id}", &fresh.make(app, team).await),
            false => template.to_owned(),
        };
        let reply = app
            .tenant(SLUG)
            .send(
                case.method.clone(),
                &path,
                Some(&session.access_token),
                body,
            )
            .await;
        assert_eq!(
            reply.status, expected,
            "{} as {role}: {}",
            case.name, reply.body
        );
        if expected >= 400 {
            reply.assert_error(expected, "forbidden");
        }
    }
}

trait AsyncFresh {
    async fn make(&self, app: &TestApp, team: &crate::helpers::Team) -> String;
}

/// A project owned by the owner.
struct FreshProject;
impl AsyncFresh for FreshProject {
    async fn make(&self, app: &TestApp, team: &crate::helpers::Team) -> String {
        app.tenant(SLUG)
            .create_project(&team.owner.access_token, "fresh")
            .await
    }
}

/// A new member, invited by the owner.
struct FreshMember;
impl AsyncFresh for FreshMember {
    async fn make(&self, app: &TestApp, team: &crate::helpers::Team) -> String {
        let email = format!("m{}@acme.test", uuid::Uuid::now_v7().simple());
        invite_and_accept(app, SLUG, &team.owner, &email, "member").await;
        let members = app
            .tenant(SLUG)
            .get("/v1/members?limit=1", &team.owner.access_token)
            .await;
        members.body["data"][0]["id"].as_str().unwrap().to_owned()
    }
}

struct NoObject;
impl AsyncFresh for NoObject {
    async fn make(&self, _: &TestApp, _: &crate::helpers::Team) -> String {
        String::new()
    }
}

#[tokio::test]
async fn each_role_gets_exactly_what_the_contract_gives_it() {
    let app = spawn_app().await;
    let team = team(&app, SLUG).await;
    let plain = [
        Case {
            name: "GET /v1/me",
            method: Method::GET,
            target: || ("/v1/me", None),
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "GET /v1/projects",
            method: Method::GET,
            target: || ("/v1/projects", None),
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "POST /v1/projects",
            method: Method::POST,
            target: || ("/v1/projects", Some(json!({"name": "p"}))),
            expect: [201, 201, 201, 403],
        },
        Case {
            name: "GET /v1/members",
            method: Method::GET,
            target: || ("/v1/members", None),
            expect: [200, 200, 403, 403],
        },
        Case {
            name: "POST /v1/invitations",
            method: Method::POST,
            target: || {
                (
                    "/v1/invitations",
                    Some(
                        json!({"email": format!("i{}@x.test", uuid::Uuid::now_v7().simple()), "role": "viewer"}),
                    ),
                )
            },
            expect: [201, 201, 403, 403],
        },
        Case {
            name: "POST /v1/api-tokens",
            method: Method::POST,
            target: || {
                (
                    "/v1/api-tokens",
                    Some(json!({"name": "ci", "scopes": ["projects:read"]})),
                )
            },
            expect: [201, 201, 201, 403],
        },
        Case {
            name: "GET /v1/api-tokens",
            method: Method::GET,
            target: || ("/v1/api-tokens", None),
            expect: [200, 200, 200, 403],
        },
        Case {
            name: "GET /v1/audit",
            method: Method::GET,
            target: || ("/v1/audit", None),
            expect: [200, 200, 403, 403],
        },
    ];
    for case in &plain {
        check(&app, &team, case, NoObject).await;
    }
    let on_projects = [
        Case {
            name: "GET /v1/projects/{id}",
            method: Method::GET,
            target: || ("/v1/projects/{id}", None),
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "PATCH another's /v1/projects/{id}",
            method: Method::PATCH,
            target: || ("/v1/projects/{id}", Some(json!({"name": "renamed"}))),
            expect: [200, 200, 403, 403],
        },
        Case {
            name: "DELETE /v1/projects/{id}",
            method: Method::DELETE,
            target: || ("/v1/projects/{id}", None),
            expect: [204, 204, 403, 403],
        },
    ];
    for case in &on_projects {
        check(&app, &team, case, FreshProject).await;
    }
    let on_members = [
        Case {
            name: "PATCH /v1/members/{id}",
            method: Method::PATCH,
            target: || ("/v1/members/{id}", Some(json!({"role": "viewer"}))),
            expect: [200, 200, 403, 403],
        },
        Case {
            name: "DELETE /v1/members/{id}",
            method: Method::DELETE,
            target: || ("/v1/members/{id}", None),
            expect: [204, 204, 403, 403],
        },
    ];
    for case in &on_members {
        check(&app, &team, case, FreshMember).await;
    }
}

#[tokio::test]
async fn a_member_edits_their_own_project_but_a_demoted_viewer_cannot() {
    let app = spawn_app().await;
    let team = team(&app, SLUG).await;
    let client = app.tenant(SLUG);
    let id = client
        .create_project(&team.member.access_token, "mine")
        .await;
    let path = format!("/v1/projects/{id}");
    assert_eq!(
        client
            .patch(
                &path,
                &team.member.access_token,
                json!({"name": "still mine"})
            )
            .await
            .status,
        200
    );

    let me = client.get("/v1/me", &team.member.access_token).await;
    let member_id = me.body["id"].as_str().unwrap();
    let demoted = client
        .patch(
            &format!("/v1/members/{member_id}"),
            &team.admin.access_token,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(demoted.status, 200);
    // The same access token, issued while a member: the new role applies at once.
    client
        .patch(&path, &team.member.access_token, json!({"name": "no"}))
        .await
        .assert_error(403, "forbidden");
    client
        .post(
            "/v1/projects",
            Some(&team.member.access_token),
            json!({"name": "no"}),
        )
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn unauthenticated_calls_are_401_on_every_protected_route() {
    let app = spawn_app().await;
    team(&app, SLUG).await;
    let client = app.tenant(SLUG);
    for (method, path) in [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/projects"),
        (Method::POST, "/v1/projects"),
        (Method::GET, "/v1/members"),
        (Method::POST, "/v1/invitations"),
        (Method::GET, "/v1/api-tokens"),
        (Method::GET, "/v1/api-tokens/introspect"),
        (Method::GET, "/v1/audit"),
    ] {
        let reply = client
            .send(method.clone(), path, None, Some(json!({})))
            .await;
        reply.assert_error(401, "unauthorized");
    }
}
