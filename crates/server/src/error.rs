//! One error type for the HTTP boundary: each refusal maps to a status and a JSON body naming
//! what was wrong. Storage failures are logged and answered without their details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable kind: invalid, unauthenticated, forbidden, not-found, refused,
    /// conflict, throttled, unavailable, internal.
    pub error: String,
    /// What was wrong, for people.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub fn refused(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A failure of ours: logged in full, answered without details.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        eprintln!("ets serve: internal error: {detail}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request; it has been logged")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.kind.into(), message: self.message })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ets_access::Rejection> for ApiError {
    fn from(r: ets_access::Rejection) -> ApiError {
        use ets_access::RejectKind as K;
        match r.kind {
            K::Invalid => ApiError::invalid(r.message),
            K::Unauthenticated => ApiError::unauthenticated(r.message),
            K::Forbidden => ApiError::forbidden(r.message),
            K::NotFound => ApiError::not_found(r.message),
            K::Refused => ApiError::refused(r.message),
            K::Conflict => ApiError::conflict(r.message),
            K::Throttled => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", r.message),
        }
    }
}

impl From<ets_registry::Rejection> for ApiError {
    fn from(r: ets_registry::Rejection) -> ApiError {
        use ets_registry::RejectKind as K;
        match r.kind {
            K::Invalid => ApiError::invalid(r.message),
            K::NotFound => ApiError::not_found(r.message),
            K::Forbidden => ApiError::forbidden(r.message),
            K::Refused => ApiError::refused(r.message),
            K::Conflict => ApiError::conflict(r.message),
        }
    }
}

impl From<ets_exchange::venue::Reject> for ApiError {
    fn from(r: ets_exchange::venue::Reject) -> ApiError {
        use ets_exchange::venue::RejectKind as K;
        match r.kind {
            K::NotFound => ApiError::not_found(r.message),
            K::Forbidden => ApiError::forbidden(r.message),
            K::Invalid => ApiError::invalid(r.message),
            K::Rule | K::Insufficient => ApiError::refused(r.message),
            K::Conflict => ApiError::conflict(r.message),
        }
    }
}

impl From<ets_store::StoreError> for ApiError {
    fn from(e: ets_store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
