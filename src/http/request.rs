//! [`Req`], a request as the handlers see it (already read, checked and
//! split), and [`Reply`], what they answer. Both are plain data, so routing
//! and handlers are tested without a socket.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::edge::EdgePolicy;
use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct Req {
    pub id: String,
    pub method: String,
    /// The path without its query string, as sent (percent-encoded).
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn from_parts(
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = (String, String)>,
        request_id: &str,
    ) -> Req {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Req {
            id: request_id.to_string(),
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
            body: Vec::new(),
        }
    }

    /// A request built in a test.
    #[cfg(test)]
    pub fn test(method: &str, url: &str, body: &str) -> Req {
        let mut headers = vec![("host".to_string(), "127.0.0.1".to_string())];
        if !body.is_empty() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        let mut req = Req::from_parts(method, url, headers, "test");
        req.body = body.as_bytes().to_vec();
        req
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path split on `/`, without empty segments.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// Decodes a JSON body. Syntax errors are `INVALID_JSON`; a body of the
    /// wrong shape is `VALIDATION_FAILED` naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.require_json_content_type()?;
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::InvalidJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        // serde's derived structs also accept a JSON array of the fields in
        // order (`["The Storm"]`); every body of this API is an object.
        if self.body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            serde_json::from_slice::<serde::de::IgnoredAny>(&self.body)
                .map_err(|e| Error::InvalidJson(e.to_string()))?;
            return Err(Error::validation("body", "must be a JSON object"));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&self.body);
        let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = inner.to_string();
                    let field = if path == "." {
                        field_named_in(&message).unwrap_or("body".into())
                    } else {
                        path
                    };
                    Error::validation(field, strip_position(&message))
                }
                _ => Error::InvalidJson(inner.to_string()),
            }
        })?;
        deserializer
            .end()
            .map_err(|e| Error::InvalidJson(e.to_string()))?;
        Ok(value)
    }

    /// Like [`Req::json`], but an empty body is `T::default()` (for POSTs
    /// whose body is optional).
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            self.json()
        }
    }

    fn require_json_content_type(&self) -> Result<(), Error> {
        let content_type = self.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(())
        } else if content_type.is_empty() {
            Err(Error::UnsupportedMediaType(
                "a body without a Content-Type".into(),
            ))
        } else {
            Err(Error::UnsupportedMediaType(truncate(content_type, 100)))
        }
    }
}

/// "missing field `title`" → "title".
fn field_named_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

/// serde_json appends " at line 1 column 12"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message.to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    pub fn ok(value: &Value) -> Reply {
        Reply::json(200, value)
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            content_type: "text/plain",
            body: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bytes(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The contract's error shape; the one place errors become replies.
    pub fn error(err: &Error, request_id: &str) -> Reply {
        let mut reply = Reply::json(err.status(), &err.to_json(request_id));
        if let Error::MethodNotAllowed { allowed, .. } = err {
            reply.headers.push(("Allow", allowed.join(", ")));
        }
        if err.status() == 401 {
            reply.headers.push(("WWW-Authenticate", "Bearer".into()));
        }
        reply
    }

    pub fn into_response(
        self,
        policy: &EdgePolicy,
    ) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let mut response = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        let mut add = |name: &str, value: &str| {
            if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        };
        let content_type = match self.content_type {
            "application/json" => "application/json",
            other if other.starts_with("text/") && !other.contains("charset") => {
                &format!("{other}; charset=utf-8")
            }
            other => other,
        };
        add("Content-Type", content_type);
        // A reply's own header replaces the policy's default of that name
        // (an asset's `Cache-Control`).
        for (name, value) in policy.response_headers() {
            if !self
                .headers
                .iter()
                .any(|(own, _)| own.eq_ignore_ascii_case(name))
            {
                add(name, value);
            }
        }
        for (name, value) in &self.headers {
            add(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        title: String,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = Req::test("POST", "/x", r#"{"title": 5}"#)
            .json::<Body>()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation { field, .. } if field == "title"),
            "{err:?}"
        );
        let err = Req::test("POST", "/x", r#"{}"#).json::<Body>().unwrap_err();
        assert!(
            matches!(&err, Error::Validation { field, .. } if field == "title"),
            "{err:?}"
        );
        let err = Req::test("POST", "/x", r#"{"title": "a", "x": 1}"#)
            .json::<Body>()
            .unwrap_err();
        assert!(matches!(&err, Error::Validation { .. }), "{err:?}");
        for not_an_object in [r#"["a"]"#, r#""a""#, "5", "null"] {
            let err = Req::test("POST", "/x", not_an_object)
                .json::<Body>()
                .unwrap_err();
            assert!(
                matches!(&err, Error::Validation { field, .. } if field == "body"),
                "{not_an_object}: {err:?}"
            );
        }
        let err = Req::test("POST", "/x", r#"{"title": "#)
            .json::<Body>()
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_JSON");
        let err = Req::test("POST", "/x", r#"{"title": "a"} trailing"#)
            .json::<Body>()
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_JSON");
    }

    #[test]
    fn bodies_must_be_declared_json() {
        let mut req = Req::test("POST", "/x", r#"{"title": "a"}"#);
        req.headers.retain(|(n, _)| n != "content-type");
        req.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        assert_eq!(
            req.json::<Body>().unwrap_err().code(),
            "UNSUPPORTED_MEDIA_TYPE"
        );
        req.headers.pop();
        req.headers.push((
            "content-type".into(),
            "Application/JSON; charset=utf-8".into(),
        ));
        assert!(req.json::<Body>().is_ok());
    }

    #[test]
    fn query_strings_are_decoded() {
        let req = Req::test("GET", "/api/runs?status=fail%65d&limit=5", "");
        assert_eq!(req.query_param("status"), Some("failed"));
        assert_eq!(req.segments(), ["api", "runs"]);
    }
}
