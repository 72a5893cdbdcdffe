//! The project resource itself: fields, updates, deletion, ordering and pages.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{assert_utc_timestamp, ids, team};

#[tokio::test]
async fn a_project_goes_through_create_read_update_delete() {
    let (app, owner, ann, _) = team().await;
    let client = app.tenant("acme");

    let created = client
        .post(
            "/v1/projects",
            Some(&ann.access_token),
            json!({"name": "  Apollo  ", "description": "to the moon"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let project = &created.body;
    let keys: HashSet<&str> = project
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "name",
            "description",
            "owner_id",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(project["name"], "Apollo");
    assert_eq!(project["description"], "to the moon");
    assert_eq!(project["owner_id"], ann.user_id.as_str());
    let created_at = assert_utc_timestamp(&project["created_at"]);
    assert_utc_timestamp(&project["updated_at"]);

    let id = project["id"].as_str().unwrap();
    let path = format!("/v1/projects/{id}");
    let read = client.get(&path, &ann.access_token).await;
    assert_eq!(read.status, 200);
    assert_eq!(&read.body, project);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = client
        .patch(&path, &ann.access_token, json!({"name": "Artemis"}))
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "Artemis");
    assert_eq!(
        updated.body["description"], "to the moon",
        "absent fields are kept"
    );
    assert_eq!(updated.body["created_at"], project["created_at"]);
    assert!(assert_utc_timestamp(&updated.body["updated_at"]) > created_at);
    assert_eq!(
        client.get(&path, &ann.access_token).await.body,
        updated.body
    );

    let deleted = client.delete(&path, &owner.access_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    client
        .get(&path, &ann.access_token)
        .await
        .assert_error(404, "not_found");
    client
        .delete(&path, &owner.access_token)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_null_description_clears_it() {
    let (app, _, ann, _) = team().await;
    let client = app.tenant("acme");
    let created = client
        .post(
            "/v1/projects",
            Some(&ann.access_token),
            json!({"name": "p", "description": "old"}),
        )
        .await;
    let path = format!("/v1/projects/{}", created.body["id"].as_str().unwrap());
    let cleared = client
        .patch(&path, &ann.access_token, json!({"description": null}))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["name"], "p");
    let read = client.get(&path, &ann.access_token).await;
    assert_eq!(read.body["description"], Value::Null);
}

#[tokio::test]
async fn projects_are_listed_newest_first() {
    let (app, _, ann, _) = team().await;
    let client = app.tenant("acme");
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            client
                .create_project(&ann.access_token, &format!("p{n}"))
                .await,
        );
    }
    let list = client.get("/v1/projects", &ann.access_token).await;
    assert_eq!(list.status, 200, "{}", list.body);
    created.reverse();
    assert_eq!(ids(&list.body), created);
    assert_eq!(list.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn cursor_pages_cover_every_project_once() {
    let (app, _, ann, _) = team().await;
    let client = app.tenant("acme");
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            client
                .create_project(&ann.access_token, &format!("p{n}"))
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/projects?limit=3&cursor={c}"),
            None => "/v1/projects?limit=3".to_owned(),
        };
        let page = client.get(&path, &ann.access_token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page_ids = ids(&page.body);
        sizes.push(page_ids.len());
        seen.extend(page_ids);
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    created.reverse();
    assert_eq!(seen, created, "every project once, newest first");
}

#[tokio::test]
async fn an_unknown_project_id_is_not_found() {
    let (app, owner, _, _) = team().await;
    let client = app.tenant("acme");
    let token = &owner.access_token;
    for id in [
        "0190a5b4-0000-7000-8000-000000000000",
        "not-an-id",
        "1%20OR%201%3D1",
    ] {
        client.assert_project_unreachable(id, token).await;
    }
}

#[tokio::test]
async fn concurrent_writes_to_one_tenant_all_succeed() {
    let (app, _, ann, _) = team().await;
    let client = app.tenant("acme");
    let creates = (0..30).map(|n| {
        client.post(
            "/v1/projects",
            Some(&ann.access_token),
            json!({ "name": format!("p{n}") }),
        )
    });
    for reply in futures::future::join_all(creates).await {
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let list = client
        .get("/v1/projects?limit=100", &ann.access_token)
        .await;
    assert_eq!(ids(&list.body).len(), 30);
}

#[tokio::test]
async fn a_null_name_is_refused_and_changes_nothing() {
    let app = crate::helpers::spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "o@acme.test", "owner-password")
        .await;
    let id = app
        .tenant("acme")
        .create_project(&owner.access_token, "Named")
        .await;
    let path = format!("/v1/projects/{id}");
    let reply = app
        .tenant("acme")
        .patch(
            &path,
            &owner.access_token,
            serde_json::json!({"name": null}),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    assert_eq!(
        app.tenant("acme")
            .get(&path, &owner.access_token)
            .await
            .body["name"],
        "Named"
    );
}
