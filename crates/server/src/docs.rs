//! The OpenAPI document and an API explorer that needs nothing from the network: one HTML page
//! with a small script, served from the binary, that reads the document and sends requests.

use crate::Platform;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

const EXPLORER: &str = include_str!("../assets/explorer.html");

pub fn routes(document: Arc<String>) -> axum::Router<Arc<Platform>> {
    axum::Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document.as_str().to_owned()) }
            }),
        )
        .route("/api/v1/docs", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], EXPLORER).into_response() }))
}
