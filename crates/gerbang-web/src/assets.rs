//! The portal's static files, compiled into the binary and served under names that carry a hash of
//! their content, so a browser may keep them for a year and a new build is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One static file and the name it is served by.
#[derive(Debug)]
pub struct Asset {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let hash = gerbang_domain::account::hex(&digest[..5]);
        Self {
            name: format!("{stem}.{hash}.{extension}"),
            content_type,
            bytes,
        }
    }

    /// The path pages link to.
    pub fn href(&self) -> String {
        format!("/assets/{}", self.name)
    }
}

pub static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "portal",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/portal.css"),
    )
});

pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "portal",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/portal.js"),
    )
});

pub static ICON: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "icon",
        "svg",
        "image/svg+xml",
        include_bytes!("../assets/icon.svg"),
    )
});

pub fn all() -> [&'static Asset; 3] {
    [&STYLE, &SCRIPT, &ICON]
}

/// `GET /assets/{name}`: a file by its hashed name; any other name is a 404.
pub async fn serve(Path(name): Path<String>) -> Response {
    match all().into_iter().find(|asset| asset.name == name) {
        Some(asset) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                (
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
