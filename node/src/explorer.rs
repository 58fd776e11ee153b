//! The block explorer (`explorer/`, a static page built with esbuild and committed in
//! `explorer/dist`), embedded in the binary and served at `GET /explorer/` on the RPC port, so
//! it calls the node from the same origin: no CORS, the same Host and Origin guards as the RPC.
//! Three files; the page routes by URL fragment (`#/block/5`), so nothing else is served.

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
/// has no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' http://127.0.0.1:* ws://127.0.0.1:* \
     http://localhost:* ws://localhost:* http://[::1]:* ws://[::1]:*; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

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

/// Answers `GET`/`HEAD` under `/explorer` with the embedded explorer (`/explorer` redirects to
/// `/explorer/`); passes everything else on.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplorerLayer;

impl<S> tower::Layer<S> for ExplorerLayer {
    type Service = ExplorerService<S>;
    fn layer(&self, inner: S) -> ExplorerService<S> {
        ExplorerService { inner }
    }
}

/// The service of [`ExplorerLayer`].
#[derive(Clone, Debug)]
pub struct ExplorerService<S> {
    inner: S,
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

impl<S, B> tower::Service<HttpRequest<B>> for ExplorerService<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let method = request.method();
        let path = request.uri().path();
        let ours = path == "/explorer" || path.starts_with("/explorer/");
        if ours && (method == http::Method::GET || method == http::Method::HEAD) {
            let response = respond(path, method == http::Method::HEAD);
            return Box::pin(async move { response.map_err(|e| Box::new(e) as BoxError) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
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
