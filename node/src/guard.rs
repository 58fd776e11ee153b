//! HTTP guards of the RPC server: requests from a web page of another origin are refused, so a
//! site a developer visits cannot drive the node (its `dev_*` methods, its decoders) through a
//! cross-site WebSocket or `fetch` to 127.0.0.1. DNS rebinding is refused by the Host filter
//! (`rpc::serve`); this layer checks the `Origin` header that browsers add.

use jsonrpsee::server::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether an `Origin` header value names a page served from this machine (or is absent:
/// non-browser clients such as the `wisp` CLI send none).
pub fn local_origin(origin: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let Some(rest) = rest else {
        return false; // "null" (file://, sandboxed frames) and anything else
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// Refuses (403) requests whose `Origin` is not local.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalOriginLayer;

impl<S> tower::Layer<S> for LocalOriginLayer {
    type Service = LocalOrigin<S>;
    fn layer(&self, inner: S) -> LocalOrigin<S> {
        LocalOrigin { inner }
    }
}

/// The service of [`LocalOriginLayer`].
#[derive(Clone, Debug)]
pub struct LocalOrigin<S> {
    inner: S,
}

impl<S, B> tower::Service<HttpRequest<B>> for LocalOrigin<S>
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
        let origin = request
            .headers()
            .get("origin")
            .map(|v| v.to_str().unwrap_or("non-ascii"));
        if local_origin(origin) {
            let future = self.inner.call(request);
            Box::pin(async move { future.await.map_err(Into::into) })
        } else {
            tracing::debug!(?origin, "refused a cross-origin RPC request");
            Box::pin(async { Ok(jsonrpsee::server::http::response::denied()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards defect 20 of the hardening review: any web page could drive the node through a
    /// cross-site WebSocket.
    #[test]
    fn only_local_origins_pass() {
        for ok in [
            None,
            Some("http://127.0.0.1:8645"),
            Some("http://localhost:3000"),
            Some("https://localhost"),
            Some("http://[::1]:8645"),
        ] {
            assert!(local_origin(ok), "{ok:?}");
        }
        for bad in [
            Some("https://evil.example"),
            Some("http://127.0.0.1.evil.example"),
            Some("http://localhost.evil.example:80"),
            Some("null"),
            Some("file://"),
            Some(""),
        ] {
            assert!(!local_origin(bad), "{bad:?}");
        }
    }
}
