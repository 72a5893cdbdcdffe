//! Who may do what with projects: owners of a project, members, the tenant's owner, strangers.

use serde_json::json;

use super::team;

#[tokio::test]
async fn the_owner_of_the_tenant_may_change_and_delete_a_members_project() {
    let (app, owner, ann, _) = team().await;
    let client = app.tenant("acme");
    let id = client.create_project(&ann.access_token, "ann's").await;
    let path = format!("/v1/projects/{id}");
    let patched = client
        .patch(
            &path,
            &owner.access_token,
            json!({"name": "renamed by owner"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["owner_id"],
        ann.user_id.as_str(),
        "ownership stays"
    );
    assert_eq!(client.delete(&path, &owner.access_token).await.status, 204);
}

#[tokio::test]
async fn a_member_may_change_only_their_own_projects() {
    let (app, _, ann, bob) = team().await;
    let client = app.tenant("acme");
    let id = client.create_project(&ann.access_token, "ann's").await;
    let path = format!("/v1/projects/{id}");
    client
        .patch(&path, &bob.access_token, json!({"name": "bob was here"}))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        client.get(&path, &bob.access_token).await.body["name"],
        "ann's",
        "members read each other's projects but the refused change left no trace"
    );
    let own = client
        .patch(&path, &ann.access_token, json!({"name": "still ann's"}))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
}

#[tokio::test]
async fn deleting_a_project_needs_admin_or_higher() {
    let (app, _, ann, bob) = team().await;
    let client = app.tenant("acme");
    let id = client.create_project(&ann.access_token, "ann's").await;
    let path = format!("/v1/projects/{id}");
    for member in [&ann, &bob] {
        client
            .delete(&path, &member.access_token)
            .await
            .assert_error(403, "forbidden");
    }
    assert_eq!(client.get(&path, &ann.access_token).await.status, 200);
}

#[tokio::test]
async fn projects_need_a_signed_in_user() {
    let (app, _, ann, _) = team().await;
    let client = app.tenant("acme");
    let id = client.create_project(&ann.access_token, "p").await;
    let path = format!("/v1/projects/{id}");
    for reply in [
        client
            .send(reqwest::Method::GET, "/v1/projects", None, None)
            .await,
        client.send(reqwest::Method::GET, &path, None, None).await,
        client
            .send(
                reqwest::Method::POST,
                "/v1/projects",
                None,
                Some(json!({"name": "x"})),
            )
            .await,
        client
            .send(
                reqwest::Method::PATCH,
                &path,
                None,
                Some(json!({"name": "x"})),
            )
            .await,
        client
            .send(reqwest::Method::DELETE, &path, None, None)
            .await,
        client.get("/v1/projects", "not-a-token").await,
    ] {
        reply.assert_error(401, "unauthorized");
    }
}
