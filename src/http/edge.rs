//! The checks every request passes before routing, and the headers every
//! response carries: the contract's Safety section.
//!
//! - `Host` must name this server (a loopback name or the bound address), so
//!   a page on another site that rebinds its DNS name to 127.0.0.1 is refused.
//! - State-changing requests with a foreign `Origin` (`null` included) are
//!   refused, so another site's page cannot drive the API from the browser.
//! - With a token configured, `/api` and `/metrics` need `Authorization:
//!   Bearer <token>`, compared in constant time.

use std::net::IpAddr;

use super::Req;
use crate::error::Error;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[derive(Debug, Clone)]
pub struct EdgePolicy {
    bind_ip: IpAddr,
    port: u16,
    token: Option<String>,
}

impl EdgePolicy {
    pub fn new(bind_ip: IpAddr, token: Option<String>) -> EdgePolicy {
        EdgePolicy {
            bind_ip,
            port: 0,
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// The port actually bound (known only after binding port 0).
    pub fn with_port(mut self, port: u16) -> EdgePolicy {
        self.port = port;
        self
    }

    pub fn check(&self, req: &Req) -> Result<(), Error> {
        let host = req
            .header("host")
            .ok_or_else(|| Error::BadRequest("the request has no Host header".into()))?;
        if !self.allowed_host(host) {
            return Err(Error::Forbidden {
                message: format!("requests for host `{}` are not served", shorten(host)),
                hint: format!(
                    "open storyflow as http://127.0.0.1:{0} or http://localhost:{0}; other host names are refused to stop DNS rebinding",
                    self.port
                ),
            });
        }
        if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && let Some(origin) = req.header("origin")
            && !self.same_origin(origin, host)
        {
            return Err(Error::Forbidden {
                message: format!(
                    "cross-origin {} from `{}` refused",
                    req.method,
                    shorten(origin)
                ),
                hint: "state-changing requests are accepted only from storyflow's own page".into(),
            });
        }
        if let Some(token) = &self.token
            && needs_token(&req.path)
            && !bearer_matches(req.header("authorization"), token)
        {
            return Err(Error::Unauthorized("this server requires a token".into()));
        }
        Ok(())
    }

    fn allowed_host(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port.is_some_and(|port| port != self.port) {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback()
                    || ip == self.bind_ip
                    || (!self.bind_ip.is_loopback() && self.bind_ip.is_unspecified())
            }
            // A name that is not localhost: served only when bound beyond
            // loopback, where the token guards the API.
            Err(_) => !self.bind_ip.is_loopback() && self.token.is_some(),
        }
    }

    fn same_origin(&self, origin: &str, host: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host) && self.allowed_host(rest))
    }

    /// Headers every response carries.
    pub fn response_headers(&self) -> [(&'static str, &'static str); 5] {
        [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Frame-Options", "DENY"),
            ("Cache-Control", "no-store"),
        ]
    }
}

fn needs_token(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    constant_time_eq::constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// `host`, `host:port`, `[::1]:port` → (name, port). `None` when malformed.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((name, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((name, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None if !host.is_empty() => Some((host, None)),
        None => None,
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> EdgePolicy {
        EdgePolicy::new("127.0.0.1".parse().unwrap(), None).with_port(7878)
    }

    fn req(method: &str, host: Option<&str>, origin: Option<&str>) -> Req {
        let mut headers = Vec::new();
        if let Some(host) = host {
            headers.push(("host".to_string(), host.to_string()));
        }
        if let Some(origin) = origin {
            headers.push(("origin".to_string(), origin.to_string()));
        }
        Req::from_parts(method, "/api/stories", headers, "t")
    }

    #[test]
    fn only_loopback_names_are_served() {
        let policy = loopback();
        for ok in [
            "127.0.0.1:7878",
            "localhost:7878",
            "LOCALHOST",
            "[::1]:7878",
            "127.0.0.1",
        ] {
            assert!(policy.check(&req("GET", Some(ok), None)).is_ok(), "{ok}");
        }
        for bad in [
            "localhost.evil.com",
            "evil.com:7878",
            "127.0.0.1:80",
            "",
            "[::1",
            "10.0.0.1:7878",
        ] {
            let err = policy.check(&req("GET", Some(bad), None)).unwrap_err();
            assert_eq!(err.status(), 403, "{bad}");
        }
        assert_eq!(
            policy.check(&req("GET", None, None)).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn foreign_origins_cannot_change_state() {
        let policy = loopback();
        let host = Some("127.0.0.1:7878");
        assert!(
            policy
                .check(&req("POST", host, Some("http://127.0.0.1:7878")))
                .is_ok()
        );
        assert!(policy.check(&req("POST", host, None)).is_ok());
        assert!(
            policy
                .check(&req("GET", host, Some("https://evil.com")))
                .is_ok()
        );
        for origin in [
            "https://evil.com",
            "null",
            "http://localhost:7878",
            "http://127.0.0.1:7878.evil.com",
        ] {
            assert_eq!(
                policy
                    .check(&req("DELETE", host, Some(origin)))
                    .unwrap_err()
                    .status(),
                403,
                "{origin}"
            );
        }
    }

    #[test]
    fn the_token_guards_the_api_only() {
        let policy =
            EdgePolicy::new("0.0.0.0".parse().unwrap(), Some("s3cret".into())).with_port(7878);
        let mut r = req("GET", Some("box.lan:7878"), None);
        assert_eq!(policy.check(&r).unwrap_err().status(), 401);
        r.headers
            .push(("authorization".into(), "Bearer wrong".into()));
        assert_eq!(policy.check(&r).unwrap_err().status(), 401);
        r.headers.pop();
        r.headers
            .push(("authorization".into(), "Bearer s3cret".into()));
        assert!(policy.check(&r).is_ok());
        let page = Req::from_parts(
            "GET",
            "/",
            vec![("host".into(), "box.lan:7878".into())],
            "t",
        );
        assert!(policy.check(&page).is_ok());
    }
}
