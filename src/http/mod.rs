//! The HTTP side: a tiny_http server, a fixed pool of request threads, the
//! edge checks every request passes (Host, Origin, token, body size, content
//! type), the router, the handlers and the embedded status page.
//!
//! A handler is a plain function from a [`Req`] to a `Result<Reply, Error>`;
//! the one place that turns an `Error` into the contract's error JSON is
//! [`Reply::error`]. Panics in a handler are caught and answered `INTERNAL`.

mod assets;
mod bible;
mod edge;
mod handlers;
mod health;
mod history;
mod import;
mod live;
mod request;
mod router;
mod search;
mod settings;

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::app::App;
use crate::error::{Error, ProtocolError};
use crate::metrics::Metrics;

pub use crate::config::HttpLimits;
pub use edge::EdgePolicy;
pub use request::{Reply, Req};
pub use router::{ROUTES, route};

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
}

impl HttpServer {
    /// Binds `addr` and starts `limits.threads` request threads.
    ///
    /// The connection bound and the timeouts come from the vendored,
    /// patched tiny_http (`vendor/tiny_http/PATCHES.md`): tiny_http 0.12
    /// itself reads every connection on a thread of its own, spawned without
    /// limit, with no socket timeout, and offers no way to change either.
    pub fn start(
        app: Arc<App>,
        addr: SocketAddr,
        policy: EdgePolicy,
        limits: HttpLimits,
    ) -> std::io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        let policy = Arc::new(policy.with_port(listener.local_addr()?.port()));
        let server = tiny_http::Server::from_listener_with_limits(
            listener,
            None,
            tiny_http::ConnectionLimits {
                max_connections: limits.max_connections.max(1),
                timeout: Some(limits.timeout),
                own_responses: Some(own_responses(policy.clone())),
            },
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let threads = limits.threads;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let threads = (0..threads.max(1))
            .map(|n| {
                let (server, app, policy, stopping) = (
                    server.clone(),
                    app.clone(),
                    policy.clone(),
                    stopping.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("http-{n}"))
                    .spawn(move || serve_requests(&server, &app, &policy, &stopping))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            server,
            threads,
            addr,
            stopping,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the request threads finish what they hold.
    pub fn shutdown(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The answers tiny_http writes by itself, in the contract's shape and with
/// the same safety headers as every other response.
fn own_responses(policy: Arc<EdgePolicy>) -> tiny_http::OwnResponses {
    Arc::new(move |status| {
        let err = match status {
            408 => Error::Protocol(ProtocolError::Timeout),
            417 => Error::Protocol(ProtocolError::Expectation),
            505 => Error::Protocol(ProtocolError::Version),
            _ => Error::BadRequest(
                "the request line or a header is malformed, longer than 16 KiB, or one of more than 100 headers".into(),
            ),
        };
        let request_id = format!("{:016x}", fastrand::u64(..));
        Reply::error(&err, &request_id)
            .into_response(&policy)
            .boxed()
    })
}

fn serve_requests(
    server: &tiny_http::Server,
    app: &Arc<App>,
    policy: &Arc<EdgePolicy>,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::SeqCst) {
        match server.recv() {
            Ok(request) => handle(request, app, policy),
            // `unblock` (shutdown) and accept failures both land here.
            Err(e) => log::debug!("http receive ended: {e}"),
        }
    }
}

fn handle(mut request: tiny_http::Request, app: &Arc<App>, policy: &Arc<EdgePolicy>) {
    Metrics::inc(&app.metrics.http_requests);
    let request_id = format!("{:016x}", fastrand::u64(..));
    let reply = match read(&mut request, policy, &request_id) {
        // A live stream lasts as long as its run: not on this thread.
        Ok(req) if live::is_live(&req) => return live::open(request, &req, app, policy),
        Ok(req) => dispatch(&req, app),
        Err(err) => Reply::error(&err, &request_id),
    };
    if reply.status >= 400 {
        Metrics::inc(&app.metrics.http_errors);
    }
    log::debug!("{} {} -> {}", request.method(), request.url(), reply.status);
    if let Err(e) = request.respond(reply.into_response(policy)) {
        log::debug!("could not send the response: {e}");
    }
}

/// Reads a request into a [`Req`] after the edge checks; the body is read
/// only when its declared size is within the limit, and never past it.
fn read(
    request: &mut tiny_http::Request,
    policy: &EdgePolicy,
    request_id: &str,
) -> Result<Req, Error> {
    let mut req = Req::from_parts(
        request.method().as_str(),
        request.url(),
        request.headers().iter().map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        }),
        request_id,
    );
    policy.check(&req)?;
    if request
        .body_length()
        .is_some_and(|len| len > MAX_BODY_BYTES)
    {
        return Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::BadRequest(format!("the request body could not be read: {e}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    req.body = body;
    Ok(req)
}

/// Routes a request, turning errors and panics into the contract's replies.
pub fn dispatch(req: &Req, app: &App) -> Reply {
    match catch_unwind(AssertUnwindSafe(|| route(req, app))) {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => {
            if err.status() >= 500 {
                log::error!(
                    "Workflow error occurred: request {} {} {} failed: {err}",
                    req.id,
                    req.method,
                    req.path
                );
            }
            Reply::error(&err, &req.id)
        }
        Err(_) => {
            log::error!(
                "Workflow error occurred: request {} {} {} panicked",
                req.id,
                req.method,
                req.path
            );
            Reply::error(&Error::Internal("handler panicked".into()), &req.id)
        }
    }
}
