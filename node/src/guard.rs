//! HTTP guards of the RPC server: requests from a web page of another origin are refused, so a
//! site a developer visits cannot drive the node (its `dev_*` methods, its decoders) through a
//! cross-site WebSocket or `fetch` to 127.0.0.1. DNS rebinding is refused by the Host filter
//! (`rpc::serve`); this layer checks the `Origin` header that browsers add.

use jsonrpsee::server::HttpResponse;

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

/// Checks an origin for `--cors`: `http://` or `https://`, a host, an optional port, nothing
/// more (no path, no wildcard), as browsers send it.
///
/// # Errors
/// What is wrong with it.
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or_else(|| format!("CORS origin `{origin}` must start with http:// or https://"))?;
    let well_formed = !rest.is_empty()
        && !rest.contains(['/', '*', ' ', '?', '#'])
        && rest.is_ascii()
        && !rest.starts_with(':');
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "CORS origin `{origin}` must be scheme://host[:port], as a browser sends it (e.g. http://localhost:5173)"
        ))
    }
}

/// Refuses (403) requests whose `Origin` is neither local nor one of `allowed` (exact
/// matches, from `--cors`).
#[derive(Clone, Debug, Default)]
pub struct LocalOriginGuard {
    /// Web origins allowed besides local ones.
    pub allowed: std::sync::Arc<[String]>,
}

impl crate::answer::Answer for LocalOriginGuard {
    fn answer(
        &self,
        _method: &http::Method,
        _path: &str,
        headers: &http::HeaderMap,
    ) -> Option<Result<HttpResponse, http::Error>> {
        let origin = headers
            .get("origin")
            .map(|v| v.to_str().unwrap_or("non-ascii"));
        if local_origin(origin) || origin.is_some_and(|o| self.allowed.iter().any(|a| a == o)) {
            return None;
        }
        tracing::debug!(?origin, "refused a cross-origin RPC request");
        Some(Ok(jsonrpsee::server::http::response::denied()))
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

    #[test]
    fn cors_origins_are_exact_web_origins() {
        for ok in [
            "http://localhost:5173",
            "https://explorer.example",
            "http://[::1]:3000",
        ] {
            assert!(check_cors_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "explorer.example",
            "https://explorer.example/",
            "https://*.example",
            "https://",
            "ftp://x",
        ] {
            assert!(check_cors_origin(bad).is_err(), "{bad}");
        }
    }
}
