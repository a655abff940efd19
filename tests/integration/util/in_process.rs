//! storyflow's API without a socket: a real `App` on a temporary SQLite file,
//! and each request passed through the same edge checks and `dispatch` the
//! server uses once it has read a request, then turned into the response the
//! server would send (content type and safety headers included).
//!
//! What this path leaves out is what tiny_http and the read loop do: the
//! body size limit, chunked bodies, timeouts, connection handling. Tests of
//! those start the real binary ([`super::Server`]). No engine workers run
//! here, so a started run stays `pending`.

use std::net::IpAddr;

use storyflow::app::{App, AppSettings};
use storyflow::http::{EdgePolicy, Reply, Req, dispatch};
use storyflow::store::Store;

use super::{Api, Resp};

/// The port the in-process server pretends to listen on; `Host` must name it.
pub const PORT: u16 = 7878;

pub struct InProcess {
    pub app: App,
    policy: EdgePolicy,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// A fresh database on loopback, with no token.
    pub fn new() -> InProcess {
        InProcess::with_token(None)
    }

    /// A fresh database on loopback, requiring `token` if given.
    pub fn with_token(token: Option<&str>) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("storyflow.db"), 4).expect("open the store");
        let loopback: IpAddr = [127, 0, 0, 1].into();
        InProcess {
            app: App::new(store, AppSettings::default()),
            policy: EdgePolicy::new(loopback, token.map(str::to_string)).with_port(PORT),
            _dir: dir,
        }
    }

    /// The answer to `req`: the edge checks, then the router and handlers.
    pub fn answer(&self, req: &Req) -> Reply {
        match self.policy.check(req) {
            Ok(()) => dispatch(req, &self.app),
            Err(err) => Reply::error(&err, &req.id),
        }
    }
}

impl Api for InProcess {
    fn raw(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        let mut req = Req::from_parts(method, path, headers.iter().cloned(), "in-process");
        req.body = body.to_vec();
        let response = self.answer(&req).into_response(&self.policy);
        let status = response.status_code().0;
        let headers = response
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        Resp {
            status,
            headers,
            body: response.into_reader().into_inner(),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{PORT}")
    }
}
