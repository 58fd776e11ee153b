//! The block explorer (`explorer/`, a static page built with esbuild and committed in
//! `explorer/dist`), embedded in the binary and served at `GET /explorer/` on the RPC port, so
//! it calls the node from the same origin: no CORS, the same Host and Origin guards as the RPC.
//! Three files; the page routes by URL fragment (`#/block/5`), so nothing else is served.

use jsonrpsee::server::{HttpBody, HttpResponse};

const INDEX_HTML: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../explorer/dist/index.html"
));
const APP_JS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../explorer/dist/app.js"
));
const APP_CSS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../explorer/dist/app.css"
));

/// The page may load only its own files and talk only to this node or another node on this
/// machine (`?rpc=`), may not be framed (the devnet write form signs with a typed-in key), and
/// has no inline script. (CSP host sources cannot name IPv6 literals, so `[::1]` is not listed:
/// Chromium logs an error for each.)
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' http://127.0.0.1:* ws://127.0.0.1:* \
     http://localhost:* ws://localhost:*; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The explorer file at `path`: its bytes and content type; `None` outside `/explorer/`.
/// `Some(None)` for a path under `/explorer/` that is not one of its files.
#[allow(clippy::type_complexity)]
pub fn file(path: &str) -> Option<Option<(&'static [u8], &'static str)>> {
    let rest = path
        .strip_prefix("/explorer")
        .filter(|r| r.starts_with('/'))?;
    Some(match rest {
        "/" | "/index.html" => Some((INDEX_HTML, "text/html; charset=utf-8")),
        "/app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        "/app.css" => Some((APP_CSS, "text/css; charset=utf-8")),
        _ => None,
    })
}

fn respond(request_path: &str, head: bool) -> Result<HttpResponse, http::Error> {
    let builder = HttpResponse::builder()
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
    if request_path == "/explorer" {
        return builder
            .status(308)
            .header("location", "/explorer/")
            .body(HttpBody::empty());
    }
    match file(request_path).flatten() {
        Some((bytes, content_type)) => builder
            .header("content-type", content_type)
            .header("cache-control", "no-cache")
            .header("content-security-policy", CONTENT_SECURITY_POLICY)
            .header("content-length", bytes.len())
            .body(if head {
                HttpBody::empty()
            } else {
                HttpBody::from(bytes.to_vec())
            }),
        None => builder
            .status(404)
            .header("content-type", "text/plain; charset=utf-8")
            .body(HttpBody::from(
                "not found: the explorer has /explorer/, /explorer/app.js and /explorer/app.css; pages are URL fragments such as /explorer/#/block/1",
            )),
    }
}

/// Answers `GET`/`HEAD` under `/explorer` with the embedded explorer (`/explorer` redirects to
/// `/explorer/`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplorerAnswer;

impl crate::answer::Answer for ExplorerAnswer {
    fn answer(
        &self,
        method: &http::Method,
        path: &str,
        _headers: &http::HeaderMap,
    ) -> Option<Result<HttpResponse, http::Error>> {
        let ours = path == "/explorer" || path.starts_with("/explorer/");
        let read = method == http::Method::GET || method == http::Method::HEAD;
        (ours && read).then(|| respond(path, method == http::Method::HEAD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_its_three_files_and_nothing_else() {
        assert_eq!(
            file("/explorer/").flatten().map(|f| f.1),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            file("/explorer/index.html").flatten().map(|f| f.0),
            Some(INDEX_HTML)
        );
        assert_eq!(
            file("/explorer/app.js").flatten().map(|f| f.0),
            Some(APP_JS)
        );
        assert_eq!(
            file("/explorer/app.css").flatten().map(|f| f.0),
            Some(APP_CSS)
        );
        assert_eq!(file("/explorer/../Cargo.toml"), Some(None));
        assert_eq!(file("/explorer/app.js.map"), Some(None));
        assert_eq!(file("/metrics"), None);
        assert_eq!(file("/explorerx"), None);
        let r = respond("/explorer", false).unwrap();
        assert_eq!(r.status(), 308);
        assert_eq!(respond("/explorer/nope", false).unwrap().status(), 404);
        let ok = respond("/explorer/", false).unwrap();
        assert!(ok.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
}
