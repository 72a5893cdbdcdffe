//! A tenant with one user of each role, made the way a customer would: provision with an
//! owner, then invite an admin, a member and a viewer.

use serde_json::json;

use super::{Session, TestApp};

pub struct Team {
    pub owner: Session,
    pub admin: Session,
    pub member: Session,
    pub viewer: Session,
}

impl Team {
    /// (role name, session) for every role, highest first.
    pub fn by_role(&self) -> [(&'static str, &Session); 4] {
        [
            ("owner", &self.owner),
            ("admin", &self.admin),
            ("member", &self.member),
            ("viewer", &self.viewer),
        ]
    }
}

pub async fn team(app: &TestApp, slug: &str) -> Team {
    let owner = app
        .create_tenant_with_owner(slug, &format!("owner@{slug}.test"), "owner-password")
        .await;
    let admin = invite_and_accept(app, slug, &owner, &format!("admin@{slug}.test"), "admin").await;
    let member =
        invite_and_accept(app, slug, &owner, &format!("member@{slug}.test"), "member").await;
    let viewer =
        invite_and_accept(app, slug, &owner, &format!("viewer@{slug}.test"), "viewer").await;
    Team {
        owner,
        admin,
        member,
        viewer,
    }
}

/// Invites `email` as `role` (as `inviter`) and accepts the invitation; returns the new session.
pub async fn invite_and_accept(
    app: &TestApp,
    slug: &str,
    inviter: &Session,
    email: &str,
    role: &str,
) -> Session {
    let client = app.tenant(slug);
    let invited = client
        .post(
            "/v1/invitations",
            Some(&inviter.access_token),
            json!({ "email": email, "role": role }),
        )
        .await;
    assert_eq!(invited.status, 201, "invite {email}: {}", invited.body);
    let token = invited.body["token"].as_str().unwrap();
    let accepted = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({ "token": token, "password": "invitee-password" }),
        )
        .await;
    assert_eq!(accepted.status, 201, "accept {email}: {}", accepted.body);
    assert_eq!(accepted.body["user"]["role"], role);
    Session::from_reply(&accepted)
}
