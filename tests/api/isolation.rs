//! The cross-tenant matrix: four tenants, and every attempt to reach one from another fails.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Session};

const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];

struct Fixture {
    slug: &'static str,
    owner: Session,
    projects: Vec<String>,
}

async fn four_tenants_with_projects(app: &crate::helpers::TestApp) -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    for (i, slug) in TENANTS.into_iter().enumerate() {
        let owner = app
            .create_tenant_with_owner(slug, "owner@example.com", &format!("password-{slug}"))
            .await;
        let mut projects = Vec::new();
        // A different count per tenant, so a leak would show up in the list counts.
        for n in 0..=i {
            projects.push(
                app.tenant(slug)
                    .create_project(&owner.access_token, &format!("{slug} project {n}"))
                    .await,
            );
        }
        fixtures.push(Fixture {
            slug,
            owner,
            projects,
        });
    }
    fixtures
}

#[tokio::test]
async fn every_tenants_token_is_refused_at_every_other_tenant() {
    let app = spawn_app().await;
    let fixtures = four_tenants_with_projects(&app).await;
    for holder in &fixtures {
        for target in fixtures.iter().filter(|t| t.slug != holder.slug) {
            let client = app.tenant(target.slug);
            for path in ["/v1/me", "/v1/projects"] {
                client
                    .get(path, &holder.owner.access_token)
                    .await
                    .assert_error(401, "unauthorized");
            }
            let create = client
                .post(
                    "/v1/projects",
                    Some(&holder.owner.access_token),
                    json!({"name": "x"}),
                )
                .await;
            create.assert_error(401, "unauthorized");
            let refresh = client
                .post(
                    "/v1/auth/refresh",
                    None,
                    json!({"refresh_token": holder.owner.refresh_token}),
                )
                .await;
            refresh.assert_error(401, "unauthorized");
        }
    }
}

#[tokio::test]
async fn a_project_id_from_another_tenant_is_not_found_and_left_untouched() {
    let app = spawn_app().await;
    let fixtures = four_tenants_with_projects(&app).await;
    for owner_of_project in &fixtures {
        for intruder in fixtures.iter().filter(|t| t.slug != owner_of_project.slug) {
            let client = app.tenant(intruder.slug);
            let token = &intruder.owner.access_token;
            for id in &owner_of_project.projects {
                client.assert_project_unreachable(id, token).await;
            }
        }
    }
    // Afterwards every project is still there, unchanged, at home.
    for fixture in &fixtures {
        let client = app.tenant(fixture.slug);
        for id in &fixture.projects {
            let reply = client
                .get(&format!("/v1/projects/{id}"), &fixture.owner.access_token)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(
                reply.body["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(fixture.slug),
                "{}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn each_tenant_lists_exactly_its_own_projects() {
    let app = spawn_app().await;
    let fixtures = four_tenants_with_projects(&app).await;
    for fixture in &fixtures {
        let reply = app
            .tenant(fixture.slug)
            .get("/v1/projects", &fixture.owner.access_token)
            .await;
        assert_eq!(reply.status, 200);
        let mut listed: Vec<String> = reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        listed.sort();
        let mut expected = fixture.projects.clone();
        expected.sort();
        assert_eq!(
            listed, expected,
            "{} lists exactly its own projects",
            fixture.slug
        );
    }
}

#[tokio::test]
async fn tenant_databases_are_separate_and_each_holds_only_its_own_rows() {
    let app = spawn_app().await;
    let fixtures = four_tenants_with_projects(&app).await;
    let mut databases = std::collections::BTreeSet::new();
    for fixture in &fixtures {
        let tenant = app
            .admin(
                Method::GET,
                &format!("/admin/v1/tenants/{}", fixture.slug),
                None,
            )
            .await;
        let name = tenant.body["database"].as_str().unwrap().to_owned();
        let database = app.database(&tenant.body);
        assert!(
            database.exists().await,
            "{} has its own database",
            fixture.slug
        );
        // Read behind silo's back: the rows in the database are this tenant's, and all of them.
        let stored = database.texts("SELECT id FROM projects ORDER BY id").await;
        let mut made = fixture.projects.clone();
        made.sort();
        assert_eq!(
            stored, made,
            "{}'s database holds its projects only",
            fixture.slug
        );
        databases.insert(name);
    }
    assert_eq!(databases.len(), TENANTS.len());
}
