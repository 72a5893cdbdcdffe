//! The outermost layer of both listeners: a request id (the client's own `x-request-id` when it
//! is 1–128 visible ASCII characters, else a new UUID), one span per request carrying the id,
//! tenant, route and status, one `info` line when the request ends, request metrics, and the
//! request timeout. One layer does all of it, since every layer is a boxed future per request.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, OnceLock, RwLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::HeaderValue,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::{field::Empty, Instrument};

use crate::{error::Error, state::AppState};

pub const REQUEST_ID: &str = "x-request-id";

/// Where `label_route` leaves the route template a request matched (bounded, so it can be a
/// metric label). Shared through the request rather than returned with the response, so a
/// request that timed out is still counted under its route.
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<&'static str>>);

/// Which listener a request arrived on.
pub type Listener = &'static str;

pub async fn observe(
    State((state, listener)): State<(AppState, Listener)>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let header = match request.headers().get(REQUEST_ID) {
        Some(value) if is_acceptable_id(value.as_bytes()) => value.clone(),
        _ => new_request_id(),
    };
    request.headers_mut().insert(REQUEST_ID, header.clone());
    let route_slot = RouteSlot::default();
    request.extensions_mut().insert(route_slot.clone());
    let id = header.to_str().unwrap_or_default();
    let method = method_label(request.method());
    let span = tracing::info_span!("request", %id, listener, method = %method, tenant = Empty, route = Empty, status = Empty);

    let timeout = Duration::from_secs(state.settings.http.request_timeout_secs);
    let mut response =
        match tokio::time::timeout(timeout, next.run(request).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => Error::Timeout.into_response(),
        };

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = match route_slot.0.get().copied() {
        // `label_route` recorded it on the span already.
        Some(route) => route,
        None => {
            span.record("route", "unmatched");
            "unmatched"
        }
    };
    span.record("status", status);
    tracing::info!(parent: &span, latency_ms = elapsed.as_secs_f64() * 1000.0, "request finished");
    state
        .metrics
        .observe_request(listener, method, route, status, elapsed.as_secs_f64());
    response.headers_mut().insert(REQUEST_ID, header);
    response
}

/// A new request id: a random UUID, written without an intermediate `String`.
fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

/// Runs inside the router for matched routes only: names the route for the span and metrics.
pub async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| intern(path.as_str()));
    if let (Some(route), Some(slot)) = (route, request.extensions().get::<RouteSlot>()) {
        tracing::Span::current().record("route", route);
        let _ = slot.0.set(route);
    }
    next.run(request).await
}

/// The route templates seen so far, each stored once for the life of the process. They come
/// from the router's own routes (a request for an unknown path has none), so the set is small
/// and bounded, and labelling a request allocates nothing.
fn intern(route: &str) -> &'static str {
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(known) = ROUTES.read().ok().and_then(|set| set.get(route).copied()) {
        return known;
    }
    let mut set = ROUTES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = set.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
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

fn is_acceptable_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
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
    fn a_route_template_is_stored_once() {
        assert!(std::ptr::eq(
            intern("/v1/projects/{id}"),
            intern(&String::from("/v1/projects/{id}"))
        ));
    }

    #[test]
    fn client_ids_must_be_short_visible_ascii() {
        assert!(is_acceptable_id(b"abc-123_XYZ"));
        assert!(is_acceptable_id("a".repeat(128).as_bytes()));
        assert!(!is_acceptable_id(b""));
        assert!(!is_acceptable_id("a".repeat(129).as_bytes()));
        assert!(!is_acceptable_id(b"has space"));
        assert!(!is_acceptable_id(b"tab\there"));
        assert!(!is_acceptable_id("caf\u{e9}".as_bytes()));
    }
}
