//! The dashboard's stylesheet and script, compiled into the binary (no CDN, nothing to
//! deploy beside it).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");

pub fn routes() -> Router {
    Router::new()
        .route(
            "/assets/app.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
            }),
        )
        .route(
            "/assets/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    JS,
                )
                    .into_response()
            }),
        )
}
