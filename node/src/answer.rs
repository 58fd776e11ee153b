//! A tower layer for what the RPC port answers itself beside JSON-RPC: the origin guard's
//! refusals, `/metrics` and `/explorer/`. Each [`Answer`] answers the requests it claims and
//! passes the rest on (to the next layer, and at the end to the RPC server).

use jsonrpsee::server::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers a request by its method, path and headers: `None` passes it on.
pub trait Answer: Clone {
    /// The response to `method path` with `headers`, if this answer claims the request.
    fn answer(
        &self,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<Result<HttpResponse, http::Error>>;
}

/// The layer of an [`Answer`].
#[derive(Clone, Debug)]
pub struct AnswerLayer<A>(pub A);

impl<S, A: Answer> tower::Layer<S> for AnswerLayer<A> {
    type Service = AnswerService<S, A>;
    fn layer(&self, inner: S) -> AnswerService<S, A> {
        AnswerService {
            inner,
            answer: self.0.clone(),
        }
    }
}

/// The service of [`AnswerLayer`].
#[derive(Clone, Debug)]
pub struct AnswerService<S, A> {
    inner: S,
    answer: A,
}

impl<S, B, A> tower::Service<HttpRequest<B>> for AnswerService<S, A>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    A: Answer,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let answer = self
            .answer
            .answer(request.method(), request.uri().path(), request.headers());
        if let Some(response) = answer {
            return Box::pin(async move { response.map_err(|e| Box::new(e) as BoxError) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}
