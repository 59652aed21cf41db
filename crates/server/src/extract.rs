//! The API's extractors: axum's `Json`, `Path` and `Query` with their refusals answered as the
//! API's JSON errors (`{"error": "invalid", "message": ...}`) instead of axum's plain text. The
//! status stays axum's (400 for a malformed body, path or query; 415 without a JSON content
//! type; 422 for a body of the wrong shape).

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

fn refused(status: axum::http::StatusCode, what: &str, detail: String) -> ApiError {
    let kind = if status == axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE { "unsupported-media-type" } else { "invalid" };
    ApiError::new(status, kind, format!("{what}: {detail}"))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        refused(r.status(), "the request body", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        refused(r.status(), "the path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        refused(r.status(), "the query", r.body_text())
    }
}
