//! The front of both listeners: one service that every request passes through before and after
//! its route. In order: a request id, a span, the request timeout, a guard against panics, then
//! (main listener) the tenant, then the routes; on the way out, what is left of an unread body
//! (see `unread`), metrics and one log line.
//!
//! It is one hand-written service rather than a stack of `from_fn` layers and nested routers on
//! purpose: each layer boxes a future and clones a service per request, and measured over HTTP
//! that glue cost more than all of silo's routing work together (BENCHMARKS.md). Here a request
//! costs one boxed future before its route.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
    Router,
};
use futures::FutureExt;
use tower::Service;
use tracing::{field::Empty, Instrument};

use crate::{
    error::Error,
    http::{observe, tenant, unread::Unread},
    state::AppState,
};

/// Which listener a request arrived on (a metric label).
pub type Listener = &'static str;

/// The service `axum::serve` runs for one listener. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Front(Arc<Shared>);

struct Shared {
    state: AppState,
    listener: Listener,
    /// Resolve a tenant before routing (the main listener) or not (the admin listener).
    tenant_scoped: bool,
    routes: Router,
    timeout: Duration,
    /// How much of a body left unread by the answer is drained (`http.body_limit_bytes`).
    drain_limit: u64,
}

impl Front {
    pub fn new(state: AppState, listener: Listener, tenant_scoped: bool, routes: Router) -> Self {
        let timeout = Duration::from_secs(state.settings.http.request_timeout_secs);
        let drain_limit = state.settings.http.body_limit_bytes as u64;
        Self(Arc::new(Shared {
            state,
            listener,
            tenant_scoped,
            routes,
            timeout,
            drain_limit,
        }))
    }
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

impl Shared {
    async fn handle(&self, mut request: Request) -> Response {
        let started = Instant::now();
        let id = observe::request_id(&request);
        request
            .headers_mut()
            .insert(observe::REQUEST_ID, id.clone());
        let route = observe::RouteSlot::default();
        request.extensions_mut().insert(route.clone());
        let method = observe::method_label(request.method());
        let span = tracing::info_span!(
            "request",
            id = id.to_str().unwrap_or_default(),
            listener = self.listener,
            method,
            tenant = Empty,
            route = Empty,
            status = Empty
        );
        let mut unanswered = Unanswered {
            span: &span,
            started,
            answered: false,
        };
        let unread = Unread::watch(&mut request);

        // A panic anywhere below (tenant, routes, handler) is a JSON 500, not a dropped
        // connection; the timeout covers everything the request waits for.
        let guarded = AssertUnwindSafe(self.route(request).instrument(span.clone())).catch_unwind();
        let mut response = match tokio::time::timeout(self.timeout, guarded).await {
            Ok(Ok(response)) => response,
            Ok(Err(_panic)) => {
                Error::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
            }
            Err(_elapsed) => Error::Timeout.into_response(),
        };
        // The request is gone by now; a body it left unread is drained, within the request's
        // own deadline, or the answer closes the connection.
        if let Some(unread) = unread {
            unread
                .settle(&mut response, self.drain_limit, started + self.timeout)
                .await;
        }

        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let route = route.get().unwrap_or_else(|| {
            span.record("route", "unmatched");
            "unmatched"
        });
        span.record("status", status);
        unanswered.answered();
        tracing::info!(parent: &span, latency_ms = elapsed.as_secs_f64() * 1000.0, "request finished");
        self.state.metrics.observe_request(
            self.listener,
            method,
            route,
            status,
            elapsed.as_secs_f64(),
        );
        response.headers_mut().insert(observe::REQUEST_ID, id);
        response
    }

    /// The tenant (main listener), then the routes.
    async fn route(&self, mut request: Request) -> Response {
        // The admission is held until the response is ready: it is the tenant's concurrency
        // slot. If this future is dropped before then, `tenant` is too, unfinished, and the
        // request's connection is closed rather than reused.
        let tenant = if self.tenant_scoped && !tenant::is_tenantless(request.uri().path()) {
            match tenant::attach(&self.state, &mut request).await {
                Ok(attached) => Some(attached),
                Err(error) => return error.into_response(),
            }
        } else {
            None
        };
        // axum's `Router` is always ready, so it is called without `poll_ready`; cloning it
        // clones an `Arc`.
        let response = match self.routes.clone().call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if let Some((_admission, db)) = tenant {
            db.finish(!response.status().is_server_error());
        }
        response
    }
}

/// Logs the end of a request dropped before its answer (the shutdown's grace ran out, or the
/// connection went away): every request ends with a log line, answered or not.
struct Unanswered<'a> {
    span: &'a tracing::Span,
    started: Instant,
    answered: bool,
}

impl Unanswered<'_> {
    /// The answer is ready: the usual closing line is written instead.
    fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            tracing::info!(
                parent: self.span,
                latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
                "request cut off before its answer"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> Response {
        panic!("a handler bug")
    }

    #[tokio::test]
    async fn a_panicking_route_is_a_json_500_with_its_request_id_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::for_tests(dir.path()).await;
        let routes = Router::new()
            .route("/boom", get(boom))
            .layer(observe::LabelRoute);
        let front = Front::new(state.clone(), "admin", false, routes);

        let request = Request::get("/boom")
            .header(observe::REQUEST_ID, "boom-1")
            .body(Body::empty())
            .unwrap();
        let response = front.oneshot(request).await.unwrap();

        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()[observe::REQUEST_ID], "boom-1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        let metrics = state.metrics.render(0, &[]);
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("silo_http_requests_total{")
                    && line.contains("route=\"/boom\"")
                    && line.contains("status=\"500\"")),
            "the panic is not counted under its route:\n{metrics}"
        );
    }
}
