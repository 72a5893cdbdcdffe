//! The outermost layer of both listeners: a request id (the client's own `x-request-id` when it
//! is 1–128 visible ASCII characters, else a new UUID), one span per request carrying the id,
//! tenant, route and status, one `info` line when the request ends, and request metrics.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use tracing::{field::Empty, Instrument};

use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// The route template a request matched (bounded, so it can be a metric label).
#[derive(Clone)]
pub struct RouteLabel(pub String);

/// Which listener a request arrived on.
pub type Listener = &'static str;

pub async fn observe(
    State((state, listener)): State<(AppState, Listener)>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header =
        HeaderValue::from_str(&id).expect("checked or generated ids are valid header values");
    request.headers_mut().insert(REQUEST_ID, header.clone());
    let method = request.method().to_string();
    let span = tracing::info_span!("request", %id, listener, method = %method, tenant = Empty, route = Empty, status = Empty);

    let mut response = next.run(request).instrument(span.clone()).await;

    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("route", route.as_str());
    span.record("status", status);
    tracing::info!(parent: &span, latency_ms = elapsed.as_secs_f64() * 1000.0, "request finished");
    state
        .metrics
        .observe_request(listener, &method, &route, status, elapsed.as_secs_f64());
    response.headers_mut().insert(REQUEST_ID, header);
    response
}

/// Runs inside the router for matched routes only: names the route for the span and metrics.
pub async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    if let Some(route) = &route {
        tracing::Span::current().record("route", route.as_str());
    }
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

fn is_acceptable_id(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_must_be_short_visible_ascii() {
        assert!(is_acceptable_id("abc-123_XYZ"));
        assert!(is_acceptable_id(&"a".repeat(128)));
        assert!(!is_acceptable_id(""));
        assert!(!is_acceptable_id(&"a".repeat(129)));
        assert!(!is_acceptable_id("has space"));
        assert!(!is_acceptable_id("tab\there"));
    }
}
