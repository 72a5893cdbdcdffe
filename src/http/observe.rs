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
    let method = method_label(request.method());
    let span = tracing::info_span!("request", %id, listener, method = %method, tenant = Empty, route = Empty, status = Empty);

    let mut response = next.run(request).instrument(span.clone()).await;

    let matched = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = match matched {
        // `label_route` recorded it on the span already.
        Some(route) => route,
        None => {
            span.record("route", "unmatched");
            "unmatched".to_owned()
        }
    };
    span.record("status", status);
    tracing::info!(parent: &span, latency_ms = elapsed.as_secs_f64() * 1000.0, "request finished");
    state
        .metrics
        .observe_request(listener, method, &route, status, elapsed.as_secs_f64());
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

/// The method as a metric label: the standard methods by name, anything else as `other`, so a
/// client inventing methods cannot grow the number of series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn is_acceptable_id(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let invented = axum::http::Method::from_bytes(b"M1134741").unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&axum::http::Method::PATCH), "PATCH");
    }

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
