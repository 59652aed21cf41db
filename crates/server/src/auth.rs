//! Who is calling: a session secret (the `ets_session` cookie, for the dashboard) or an API
//! token (`Authorization: Bearer`), checked against the access state at the request's time.
//! A request without either is the public; one with a credential that does not hold (unknown,
//! expired, logged out, revoked) is refused rather than served as the public.

use crate::error::{ApiError, ApiResult};
use crate::Platform;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ets_access::{allows, Action, Actor, Principal, Role};
use std::net::SocketAddr;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "ets_session";

#[derive(Clone)]
pub struct Caller {
    pub principal: Option<Principal>,
    /// Where the request came from, as the audit journal records it.
    pub origin: String,
}

impl Caller {
    /// The caller's actor for an access command.
    pub fn actor(&self) -> Actor {
        self.principal.as_ref().map_or(Actor::Anonymous, |p| p.actor.clone())
    }

    pub fn user(&self) -> Option<&str> {
        self.principal.as_ref().map(|p| p.user.as_str())
    }

    pub fn roles(&self) -> &[Role] {
        match &self.principal {
            Some(p) => &p.roles,
            None => std::slice::from_ref(&PUBLIC),
        }
    }

    /// Allowed to do `action`, or the reason not.
    pub fn may(&self, action: &Action) -> ApiResult<()> {
        if allows(self.roles(), action) {
            return Ok(());
        }
        match &self.principal {
            None => Err(ApiError::unauthenticated("this needs a session or an API token (Authorization: Bearer <token>)")),
            Some(p) => Err(ApiError::forbidden(format!("{} may not do this ({action:?})", p.user))),
        }
    }

    /// The signed-in principal, or 401.
    pub fn signed_in(&self) -> ApiResult<&Principal> {
        self.principal.as_ref().ok_or_else(|| ApiError::unauthenticated("this needs a session or an API token"))
    }
}

static PUBLIC: Role = Role::Public;

/// The presented secret, if any: the bearer token wins over the cookie.
pub fn presented_secret(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return Some(value.strip_prefix("Bearer ").unwrap_or(value).trim().to_string());
    }
    let cookies = parts.headers.get_all(axum::http::header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The origin as an identifier the journal accepts: the peer address with its separators
/// replaced (`127.0.0.1:53122` → `127.0.0.1`), or `local` without a socket (in-process calls).
pub fn origin(parts: &Parts) -> String {
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => addr.ip().to_string().replace(':', "-"),
        None => "local".into(),
    }
}

impl FromRequestParts<Arc<Platform>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, platform: &Arc<Platform>) -> Result<Caller, ApiError> {
        let origin = origin(parts);
        let principal = match presented_secret(parts) {
            None => None,
            Some(secret) if secret.is_empty() => None,
            Some(secret) => Some(platform.access.lock().expect("access lock").access().authenticate(&secret, platform.now())?),
        };
        Ok(Caller { principal, origin })
    }
}
