//! Request bodies an answer left unread: drained, so the client's keep-alive connection stays
//! usable, or else the answer says `Connection: close`.
//!
//! Why: silo often answers before it reads a body (an unknown tenant, a missing token, a rate
//! limit, a compressed body, a body over the limit). hyper then reads what has already arrived
//! and, if the body is not complete, closes the connection after the answer without saying so.
//! A client still sending its body gets a broken pipe, and a pooling client reuses a connection
//! that is gone: connection errors exactly when silo is refusing politely.
//!
//! Draining is bounded twice: at most `http.body_limit_bytes` more bytes (what silo would have
//! read for a request it serves), and only until the request's own deadline
//! (`http.request_timeout_secs` after it arrived), so a slow sender holds a connection no
//! longer than a request may run. Past either bound, or when a client waiting for
//! `100 Continue` has not been asked for its body, the answer says `Connection: close` instead,
//! which hyper honours. HTTP/2 needs none of this: an unread body resets only its stream.

use std::{
    mem,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{header, HeaderValue, Version},
    response::Response,
};
use futures::StreamExt;
use http_body::{Frame, SizeHint};

/// Watches one request's body; [`Unread::settle`] deals with whatever the answer left of it.
pub struct Unread {
    left: Arc<Mutex<Option<Left>>>,
    length: Option<u64>,
    expects_continue: bool,
}

/// The rest of a body, handed back when the one reading it let go before its end.
struct Left {
    body: Body,
    /// Bytes read before it was let go.
    read: u64,
    /// Whether anyone asked for the body at all (hyper sends `100 Continue` on the first ask).
    asked: bool,
}

impl Unread {
    /// Wraps the body of an HTTP/1 request that has one; `None` (and nothing changed) for a
    /// request without a body, the common case, which so costs nothing.
    pub fn watch(request: &mut Request) -> Option<Self> {
        use http_body::Body as _;
        if request.version() > Version::HTTP_11 || request.body().is_end_stream() {
            return None;
        }
        let headers = request.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse().ok());
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let left = Arc::new(Mutex::new(None));
        let body = mem::take(request.body_mut());
        *request.body_mut() = Body::new(Watched {
            inner: body,
            read: 0,
            asked: false,
            done: false,
            left: left.clone(),
        });
        Some(Self {
            left,
            length,
            expects_continue,
        })
    }

    /// Once the answer is ready (and the request, with its body, dropped): drains what is left
    /// of the body within `limit` bytes and until `deadline`, or marks the answer
    /// `Connection: close`.
    pub async fn settle(self, response: &mut Response, limit: u64, deadline: Instant) {
        let left = self
            .left
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(left) = left else {
            return; // read to its end, or it broke (hyper closes a broken connection itself)
        };
        let drained = if self.expects_continue && !left.asked {
            // The client waits to be asked for its body; asking now would invite a body
            // nobody reads.
            false
        } else if self
            .length
            .is_some_and(|length| length.saturating_sub(left.read) > limit)
        {
            false
        } else {
            drain(left.body, limit, deadline).await
        };
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// Reads `body` to its end, discarding it: `true` if it ended within `limit` bytes and before
/// `deadline`.
async fn drain(body: Body, limit: u64, deadline: Instant) -> bool {
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    let until = tokio::time::Instant::from_std(deadline);
    loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(None) => return true,
            Ok(Some(Ok(bytes))) => {
                read += bytes.len() as u64;
                if read > limit {
                    return false;
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// The request's body as handlers see it: counts what is read, and when dropped before its end
/// hands the rest back to its [`Unread`].
struct Watched {
    inner: Body,
    read: u64,
    asked: bool,
    done: bool,
    left: Arc<Mutex<Option<Left>>>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        this.asked = true;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.done = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        use http_body::Body as _;
        if self.done || self.inner.is_end_stream() {
            return;
        }
        let left = Left {
            body: mem::take(&mut self.inner),
            read: self.read,
            asked: self.asked,
        };
        *self.left.lock().unwrap_or_else(PoisonError::into_inner) = Some(left);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse;

    use super::*;

    fn request(body: Body, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::post("/v1/projects");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(body).unwrap()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn closes(response: &Response) -> bool {
        response.headers().get(header::CONNECTION) == Some(&HeaderValue::from_static("close"))
    }

    #[test]
    fn a_request_without_a_body_is_not_watched() {
        let mut plain = request(Body::empty(), &[]);
        assert!(Unread::watch(&mut plain).is_none());
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_leaves_the_connection_alone() {
        let mut req = request(Body::from("{\"name\":\"x\"}"), &[]);
        let unread = Unread::watch(&mut req).expect("watched");
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 10)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"{\"name\":\"x\"}");
        let mut response = ().into_response();
        unread.settle(&mut response, 1 << 10, soon()).await;
        assert!(!closes(&response));
    }

    #[tokio::test]
    async fn a_body_nobody_read_is_drained_within_the_limit() {
        let (sender, body) = chunks(3, 100);
        let mut req = request(body, &[]);
        let unread = Unread::watch(&mut req).expect("watched");
        drop(req);
        let mut response = ().into_response();
        unread.settle(&mut response, 1_000, soon()).await;
        assert!(!closes(&response));
        assert!(sender.await.unwrap(), "the whole body was taken");
    }

    #[tokio::test]
    async fn a_body_longer_than_the_limit_closes_the_connection() {
        let (_sender, body) = chunks(3, 100);
        let mut req = request(body, &[]);
        let unread = Unread::watch(&mut req).expect("watched");
        drop(req);
        let mut response = ().into_response();
        unread.settle(&mut response, 250, soon()).await;
        assert!(closes(&response));
    }

    #[tokio::test]
    async fn a_declared_length_past_the_limit_closes_without_reading() {
        let (_sender, body) = chunks(1, 10);
        let mut req = request(body, &[("content-length", "5000")]);
        let unread = Unread::watch(&mut req).expect("watched");
        drop(req);
        let mut response = ().into_response();
        unread.settle(&mut response, 1_000, soon()).await;
        assert!(closes(&response));
    }

    #[tokio::test]
    async fn a_body_slower_than_the_deadline_closes_the_connection() {
        // A body that never ends.
        let (_keep, body) = stalled();
        let mut req = request(body, &[]);
        let unread = Unread::watch(&mut req).expect("watched");
        drop(req);
        let mut response = ().into_response();
        let deadline = Instant::now() + Duration::from_millis(50);
        unread.settle(&mut response, 1_000, deadline).await;
        assert!(closes(&response));
    }

    #[tokio::test]
    async fn a_client_waiting_for_100_continue_is_not_asked_for_its_body() {
        let (_keep, body) = stalled();
        let mut req = request(body, &[("expect", "100-continue")]);
        let unread = Unread::watch(&mut req).expect("watched");
        drop(req);
        let mut response = ().into_response();
        unread.settle(&mut response, 1_000, soon()).await;
        assert!(closes(&response));
    }

    /// A streamed body of `count` chunks of `size` bytes; the task answers whether every chunk
    /// was taken.
    fn chunks(count: usize, size: usize) -> (tokio::task::JoinHandle<bool>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let sender = tokio::spawn(async move {
            for _ in 0..count {
                if tx.send(Ok(Bytes::from(vec![b'x'; size]))).await.is_err() {
                    return false;
                }
            }
            true
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (sender, Body::from_stream(stream))
    }

    /// A body whose next chunk never comes while the sender is kept.
    fn stalled() -> (
        tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
        Body,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (tx, Body::from_stream(stream))
    }
}
