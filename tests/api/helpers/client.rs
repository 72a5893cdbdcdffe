//! Talking to one tenant over HTTP, and replies decoded for assertions.

use reqwest::{header::HeaderMap, Method};
use serde_json::{json, Value};

use super::TestApp;

/// A response: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends a prepared request and decodes its reply.
    pub async fn send(request: reqwest::RequestBuilder) -> Self {
        Self::from(request.send().await.expect("request")).await
    }

    /// The API error code, if this is an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and the error shape `{"error": {"code", "message"}}` with `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.code(), code, "unexpected code; body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error needs a message: {}",
            self.body
        );
    }

    /// Asserts `503 tenant_unavailable` with a `Retry-After`: a passing condition to retry.
    #[track_caller]
    pub fn assert_unavailable(&self) {
        self.assert_error(503, "tenant_unavailable");
        assert!(
            self.headers.contains_key("retry-after"),
            "no Retry-After: {:?}",
            self.headers
        );
    }
}

/// A signed-in user of one tenant.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Session {
    pub fn from_reply(reply: &Reply) -> Self {
        Session {
            user_id: reply.body["user"]["id"]
                .as_str()
                .expect("user id")
                .to_owned(),
            access_token: reply.body["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            refresh_token: reply.body["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        }
    }
}

pub struct TenantClient<'a> {
    app: &'a TestApp,
    host: String,
}

impl<'a> TenantClient<'a> {
    pub fn new(app: &'a TestApp, slug: &str) -> Self {
        Self {
            app,
            host: format!("{slug}.localhost"),
        }
    }

    /// Sends a request with this tenant's Host, an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("host", &self.host);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Asserts the tenant is served: a new user signs up and reads `/v1/me`.
    pub async fn assert_serves(&self, email: &str, password: &str) {
        let session = self.signup(email, password).await;
        let me = self.get("/v1/me", &session.access_token).await;
        assert_eq!(me.status, 200, "{}", me.body);
    }

    pub async fn signup(&self, email: &str, password: &str) -> Session {
        let reply = self
            .post(
                "/v1/auth/signup",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(
            reply.status, 201,
            "signup {email} at {}: {}",
            self.host, reply.body
        );
        Session::from_reply(&reply)
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/v1/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let reply = self.try_login(email, password).await;
        assert_eq!(
            reply.status, 200,
            "login {email} at {}: {}",
            self.host, reply.body
        );
        Session::from_reply(&reply)
    }

    /// Creates an API token named `ci` with `scopes`; returns the whole reply body (id, token...).
    pub async fn create_api_token(&self, token: &str, scopes: Value) -> Value {
        let reply = self
            .post(
                "/v1/api-tokens",
                Some(token),
                json!({"name": "ci", "scopes": scopes}),
            )
            .await;
        assert_eq!(
            reply.status, 201,
            "create API token at {}: {}",
            self.host, reply.body
        );
        reply.body
    }

    /// Asserts that the project `id` can be neither read, patched nor deleted with `token` here.
    pub async fn assert_project_unreachable(&self, id: &str, token: &str) {
        let path = format!("/v1/projects/{id}");
        self.get(&path, token).await.assert_error(404, "not_found");
        self.patch(&path, token, json!({"name": "hijacked"}))
            .await
            .assert_error(404, "not_found");
        self.delete(&path, token)
            .await
            .assert_error(404, "not_found");
    }

    /// Creates a project and returns its id.
    pub async fn create_project(&self, token: &str, name: &str) -> String {
        let reply = self
            .post("/v1/projects", Some(token), json!({ "name": name }))
            .await;
        assert_eq!(
            reply.status, 201,
            "create project at {}: {}",
            self.host, reply.body
        );
        reply.body["id"].as_str().unwrap().to_owned()
    }
}
