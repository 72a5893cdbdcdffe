//! Typed extractors for what a request carries: `Json`, `OptionalJson`, `Query` and `Path`
//! answer a bad body or parameter with our error shape instead of axum's text.

use axum::{
    extract::{
        rejection::JsonRejection, rejection::QueryRejection, FromRequest, FromRequestParts, Request,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::Error;

/// A JSON body whose rejections are API errors: wrong content type 415, bad syntax 400,
/// wrong shape or unknown field 422, too large 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        // Bodies are read as sent: a compressed one would be taken for (bad) JSON, or worse,
        // a body labelled compressed but sent plain would be accepted.
        let encoded = req
            .headers()
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
            .map(<[u8]>::trim_ascii)
            // RFC 9110 lists may hold empty elements, which name nothing.
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(Error::UnsupportedMediaType(
                "compressed request bodies are not accepted (Content-Encoding); send the JSON as is"
                    .into(),
            ));
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body whose fields are all optional: an empty body, with or without a Content-Type,
/// reads as `{}`. Anything else is read as [`Json`] reads it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let head = Request::from_parts(parts.clone(), axum::body::Body::empty());
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
                _ => Error::BadRequest("the request body could not be read".into()),
            })?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        let (parts, _) = head.into_parts();
        let Json(value) =
            Json::from_request(Request::from_parts(parts, bytes.into()), state).await?;
        Ok(OptionalJson(value))
    }
}

fn json_error(rejection: JsonRejection) -> Error {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => Error::Validation {
            message: clean(rejection.body_text()),
            fields: Default::default(),
        },
        _ => Error::BadRequest(format!(
            "the body is not valid JSON: {}",
            clean(rejection.body_text())
        )),
    }
}

/// serde's message minus axum's prefix, capped so echoed input cannot be huge.
fn clean(text: String) -> String {
    let text = text
        .split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(text);
    text.chars().take(300).collect()
}

/// Query parameters whose rejections are `422 validation_failed`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection: QueryRejection| Error::Validation {
                message: clean(rejection.body_text()),
                fields: Default::default(),
            })
    }
}

/// Path parameters whose rejections (say, invalid UTF-8 in `%FF`) are JSON errors too. A value
/// that cannot name anything in the path is `404 not_found`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Path(path.0))
            .map_err(|_| Error::NotFound("nothing here has that name".into()))
    }
}
