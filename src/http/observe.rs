//! What `front` needs to observe a request: its id (the client's own `x-request-id` when it is
//! 1–128 visible ASCII characters, else a new UUID), the route template it matched, and the
//! method, each as a bounded metric label.

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{Arc, LazyLock, OnceLock, RwLock},
    task::{Context, Poll},
};

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
};
use tower::{Layer, Service};

pub const REQUEST_ID: &str = "x-request-id";

/// The request's id: the client's when acceptable, else a new one.
pub fn request_id(request: &Request) -> HeaderValue {
    match request.headers().get(REQUEST_ID) {
        Some(value) if is_acceptable_id(value.as_bytes()) => value.clone(),
        _ => new_request_id(),
    }
}

/// A new request id: a random UUID, written without an intermediate `String`.
fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

/// Where [`LabelRoute`] leaves the route template a request matched (bounded, so it can be a
/// metric label). Shared through the request rather than returned with the response, so a
/// request that timed out is still counted under its route.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<&'static str>>);

impl RouteSlot {
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// A layer around every route that names the route for the span and the metrics (the route
/// template axum matched; the fallbacks, which match none, name nothing and count as
/// `unmatched`). A plain service wrapper: it adds no allocation and no future of its own.
#[derive(Clone, Copy)]
pub struct LabelRoute;

impl<S> Layer<S> for LabelRoute {
    type Service = Labelled<S>;

    fn layer(&self, inner: S) -> Labelled<S> {
        Labelled(inner)
    }
}

#[derive(Clone)]
pub struct Labelled<S>(S);

impl<S: Service<Request, Error = Infallible>> Service<Request> for Labelled<S> {
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> S::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| intern(path.as_str()));
        if let (Some(route), Some(slot)) = (route, request.extensions().get::<RouteSlot>()) {
            tracing::Span::current().record("route", route);
            let _ = slot.0.set(route);
        }
        self.0.call(request)
    }
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
pub fn method_label(method: &axum::http::Method) -> &'static str {
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
