//! OpenAI-compatible chat completions: OpenAI itself, Ollama, llama.cpp
//! server, vLLM and anything else that answers `POST {base}/chat/completions`.
//!
//! One request per outline or chapter: the system and user parts of the
//! [`prompts`] as two messages, the text from `choices[0].message.content`.
//! Every failure is classified once, in [`classify_status`] and
//! [`classify_transport`]: timeouts, broken connections, 408, 429 and 5xx are
//! transient (with the server's `Retry-After` when it sends one); 401/403,
//! 404, other 4xx and malformed answers are permanent. This backend never
//! retries by itself: the engine does.
//!
//! Invariant: the API key is sent only in the `Authorization` header and
//! never appears in an error message, even when a server echoes it back.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Completion, GenError, Generator, Prompt, Task};
use crate::run::FailureCode;

/// Largest answer read from the server; chat completions are far smaller.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;
/// Characters of a server's error body quoted in a message.
const EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL, such as `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

pub struct OpenAi {
    /// `{base}/chat/completions`.
    endpoint: String,
    /// The endpoint without any `user:password@`, for messages.
    shown_endpoint: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    agent: ureq::Agent,
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Result<OpenAi, String> {
        let base = validate_base_url(&config.base_url)?;
        let model = config.model.trim();
        if model.is_empty() {
            return Err("the model name is empty; pass one with --llm-model".into());
        }
        let endpoint = format!("{base}/chat/completions");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(OpenAi {
            shown_endpoint: without_userinfo(&endpoint),
            endpoint,
            model: model.to_string(),
            api_key: config.api_key.filter(|key| !key.trim().is_empty()),
            timeout: config.timeout,
            agent,
        })
    }

    /// Sends one chat completion and returns its text.
    fn complete(&self, prompt: &Prompt, max_tokens: u32) -> Result<Completion, GenError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": max_tokens,
            "stream": false,
        });
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Accept", "application/json")
            .header(
                "User-Agent",
                concat!("storyflow/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request
            .send_json(&body)
            .map_err(|e| self.classify_transport(e))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec();
        if !(200..300).contains(&status) {
            // The status says what went wrong; the body only adds detail.
            let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
            return Err(self.redacted(classify_status(
                status,
                retry_after,
                &error_excerpt(text.as_deref().unwrap_or("")),
                &self.context(),
            )));
        }
        let bytes = body.map_err(|e| self.classify_transport(e))?;
        let text = String::from_utf8_lossy(&bytes);
        parse_completion(&text).map_err(|e| self.redacted(e))
    }

    fn context(&self) -> Context<'_> {
        Context {
            endpoint: &self.shown_endpoint,
            model: &self.model,
            has_key: self.api_key.is_some(),
        }
    }

    fn classify_transport(&self, error: ureq::Error) -> GenError {
        classify_transport(error, &self.shown_endpoint, self.timeout)
    }

    /// Removes the API key from a message, in case the server quoted it.
    fn redacted(&self, error: GenError) -> GenError {
        let Some(key) = self.api_key.as_deref() else {
            return error;
        };
        let scrub = |message: String| message.replace(key, "[redacted]");
        match error {
            GenError::Transient {
                message,
                retry_after,
            } => GenError::Transient {
                message: scrub(message),
                retry_after,
            },
            GenError::Permanent { code, message } => GenError::Permanent {
                code,
                message: scrub(message),
            },
        }
    }
}

impl Generator for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn reports_truncation(&self) -> bool {
        true
    }

    fn generate(&self, task: &Task<'_>) -> Result<Completion, GenError> {
        self.complete(&task.prompt, task.max_tokens)
    }
}

/// The base URL without trailing slashes, if it is a usable http(s) URL.
fn validate_base_url(raw: &str) -> Result<String, String> {
    let base = raw.trim().trim_end_matches('/');
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(format!(
            "the llm url `{}` must start with http:// or https://, such as http://127.0.0.1:11434/v1",
            without_userinfo(base)
        ));
    }
    let uri: ureq::http::Uri = base.parse().map_err(|e| {
        format!(
            "the llm url `{}` is not a valid url: {e}",
            without_userinfo(base)
        )
    })?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "the llm url `{}` names no host",
            without_userinfo(base)
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "the llm url `{}` must not have a query; give the base url, such as http://127.0.0.1:11434/v1",
            without_userinfo(base)
        ));
    }
    Ok(base.to_string())
}

/// `scheme://user:pass@host/...` without `user:pass@`.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// What a message about a failed request names.
struct Context<'a> {
    endpoint: &'a str,
    model: &'a str,
    has_key: bool,
}

/// Classifies a non-2xx answer.
fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    excerpt: &str,
    context: &Context,
) -> GenError {
    let detail = if excerpt.is_empty() {
        format!("http {status}")
    } else {
        format!("http {status}: {excerpt}")
    };
    let endpoint = context.endpoint;
    match status {
        401 | 403 => {
            let hint = if context.has_key {
                "check the key in STORYFLOW_LLM_API_KEY"
            } else {
                "set STORYFLOW_LLM_API_KEY to a valid api key"
            };
            GenError::permanent(
                FailureCode::GeneratorAuth,
                format!("the llm server at {endpoint} refused the credentials ({detail}); {hint}"),
            )
        }
        404 => GenError::permanent(
            FailureCode::GeneratorNotFound,
            format!(
                "the llm server answered not found for model `{}` at {endpoint} ({detail}); check --llm-url and --llm-model",
                context.model
            ),
        ),
        408 | 429 | 500..=599 => {
            let what = match status {
                408 => "timed out reading the request",
                429 => "is rate limiting",
                _ => "failed",
            };
            GenError::Transient {
                message: format!("the llm server at {endpoint} {what} ({detail})"),
                retry_after,
            }
        }
        400..=499 => GenError::permanent(
            FailureCode::GeneratorRejected,
            format!("the llm server at {endpoint} rejected the request ({detail})"),
        ),
        _ => GenError::permanent(
            FailureCode::GeneratorBadResponse,
            format!("the llm server at {endpoint} gave an unexpected answer ({detail})"),
        ),
    }
}

/// Classifies a failure to exchange a request and an answer at all.
fn classify_transport(error: ureq::Error, endpoint: &str, timeout: Duration) -> GenError {
    use ureq::Error as E;
    match error {
        E::Timeout(_) => GenError::transient(format!(
            "the llm server at {endpoint} did not answer within {}",
            humantime::format_duration(timeout)
        )),
        E::Io(e) => {
            let what = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "refused the connection".to_string(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                    "dropped the connection".to_string()
                }
                std::io::ErrorKind::UnexpectedEof => "closed the connection early".to_string(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    "did not answer in time".to_string()
                }
                _ => format!("could not be reached: {}", lowercase_first(&e.to_string())),
            };
            GenError::transient(format!("the llm server at {endpoint} {what}"))
        }
        E::HostNotFound => GenError::transient(format!(
            "the host of the llm server at {endpoint} could not be resolved"
        )),
        E::ConnectionFailed | E::Other(_) | E::BodyStalled => GenError::transient(format!(
            "the llm server at {endpoint} could not be reached: {error}"
        )),
        E::Protocol(_) | E::BodyExceedsLimit(_) | E::LargeResponseHeader(..) | E::Json(_) => {
            GenError::permanent(
                FailureCode::GeneratorBadResponse,
                format!("the llm server at {endpoint} sent a malformed answer: {error}"),
            )
        }
        E::RedirectFailed | E::TooManyRedirects => GenError::permanent(
            FailureCode::GeneratorRejected,
            format!(
                "the llm server at {endpoint} redirected the request ({error}); give the final url in --llm-url"
            ),
        ),
        other => GenError::permanent(
            FailureCode::GeneratorRejected,
            format!("the request to the llm server at {endpoint} failed: {other}"),
        ),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds; dates are ignored
/// (the engine's own backoff applies then).
fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(delay) = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(delay);
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(seconds)
}

/// A delay from a number a server sent: never negative, NaN or absurd.
fn seconds(value: f64) -> Option<Duration> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(value.min(24.0 * 3600.0)).ok()
}

/// The text of a successful answer, and whether the length limit cut it
/// off (`finish_reason: "length"`).
fn parse_completion(body: &str) -> Result<Completion, GenError> {
    let bad = |what: String| GenError::permanent(FailureCode::GeneratorBadResponse, what);
    let value: Value = serde_json::from_str(body).map_err(|_| {
        bad(format!(
            "the llm server's answer is not json: {}",
            quoted_excerpt(body)
        ))
    })?;
    let Some(choice) = value.get("choices").and_then(|c| c.get(0)) else {
        if value.get("error").is_some() {
            return Err(bad(format!(
                "the llm server answered with an error: {}",
                error_excerpt(body)
            )));
        }
        return Err(bad(format!(
            "the llm server's answer has no choices: {}",
            quoted_excerpt(body)
        )));
    };
    let Some(content) = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
    else {
        return Err(bad(format!(
            "the llm server's answer has no message content: {}",
            quoted_excerpt(body)
        )));
    };
    let text = without_reasoning(content).trim();
    let reason = choice.get("finish_reason").and_then(Value::as_str);
    if text.is_empty() {
        return Err(bad(format!(
            "the llm server returned empty text (finish reason: {})",
            reason.unwrap_or("none given")
        )));
    }
    Ok(Completion {
        text: text.to_string(),
        truncated: reason == Some("length"),
    })
}

/// Reasoning models served by Ollama or llama.cpp may open their answer
/// with a `<think>…</think>` block; it is not part of the story.
fn without_reasoning(content: &str) -> &str {
    let trimmed = content.trim_start();
    if let Some(rest) = trimmed.strip_prefix("<think>")
        && let Some(end) = rest.find("</think>")
    {
        return &rest[end + "</think>".len()..];
    }
    content
}

/// The useful part of an error body: the `error.message` (OpenAI), `message`
/// (vLLM) or `detail` of a JSON error, else the text itself, shortened.
fn error_excerpt(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body).ok().and_then(|value| {
        let error = value.get("error");
        [
            error.and_then(|e| e.get("message")),
            error,
            value.get("message"),
            value.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_string))
    });
    shorten(message.as_deref().unwrap_or(body))
}

fn quoted_excerpt(body: &str) -> String {
    if body.trim().is_empty() {
        "(an empty body)".into()
    } else {
        format!("`{}`", shorten(body))
    }
}

/// Whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
fn shorten(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut short: String = collapsed.chars().take(EXCERPT_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: Context<'static> = Context {
        endpoint: "http://127.0.0.1:9/v1/chat/completions",
        model: "test-model",
        has_key: false,
    };

    fn code(error: &GenError) -> &'static str {
        match error {
            GenError::Permanent { code, .. } => code.as_str(),
            GenError::Transient { .. } => "transient",
        }
    }

    fn config(base_url: &str) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            model: "test-model".into(),
            api_key: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        let cases = [
            (401, FailureCode::GeneratorAuth.as_str()),
            (403, FailureCode::GeneratorAuth.as_str()),
            (404, FailureCode::GeneratorNotFound.as_str()),
            (400, FailureCode::GeneratorRejected.as_str()),
            (422, FailureCode::GeneratorRejected.as_str()),
            (408, "transient"),
            (429, "transient"),
            (500, "transient"),
            (503, "transient"),
            (302, FailureCode::GeneratorBadResponse.as_str()),
        ];
        for (status, expected) in cases {
            let error = classify_status(status, None, "nope", &CONTEXT);
            assert_eq!(code(&error), expected, "status {status}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("http {status}: nope")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_rate_limit_carries_the_servers_delay() {
        let error = classify_status(429, Some(Duration::from_secs(3)), "", &CONTEXT);
        assert_eq!(
            error,
            GenError::Transient {
                message: "the llm server at http://127.0.0.1:9/v1/chat/completions is rate limiting (http 429)".into(),
                retry_after: Some(Duration::from_secs(3)),
            }
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_milliseconds_and_never_panics() {
        let delay = |pairs: &[(&str, &str)]| {
            let mut headers = ureq::http::HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(
                    ureq::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    ureq::http::HeaderValue::from_str(value).unwrap(),
                );
            }
            retry_after(&headers)
        };
        assert_eq!(delay(&[("retry-after", "2")]), Some(Duration::from_secs(2)));
        assert_eq!(
            delay(&[("retry-after", " 1.5 ")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            delay(&[("retry-after", "9"), ("retry-after-ms", "250")]),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            delay(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            None
        );
        assert_eq!(delay(&[("retry-after", "-1")]), None);
        assert_eq!(delay(&[("retry-after", "NaN")]), None);
        assert_eq!(delay(&[("retry-after", "inf")]), None);
        assert_eq!(
            delay(&[("retry-after", "1e300")]),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(delay(&[]), None);
    }

    #[test]
    fn a_completion_yields_its_first_choices_text() {
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"  It rained.\n"},"finish_reason":"stop"}]}"#;
        assert_eq!(
            parse_completion(body).unwrap(),
            Completion::finished("It rained.")
        );
        let thinking =
            r#"{"choices":[{"message":{"content":"<think>plan it</think>\n\nIt rained."}}]}"#;
        assert_eq!(parse_completion(thinking).unwrap().text, "It rained.");
    }

    #[test]
    fn a_completion_cut_by_the_length_limit_says_so() {
        let body =
            r#"{"choices":[{"message":{"content":"It rained and"},"finish_reason":"length"}]}"#;
        assert_eq!(
            parse_completion(body).unwrap(),
            Completion {
                text: "It rained and".into(),
                truncated: true
            }
        );
    }

    #[test]
    fn malformed_or_empty_answers_are_bad_responses() {
        for body in [
            "",
            "<html>gateway</html>",
            "{}",
            r#"{"choices":[]}"#,
            r#"{"choices":[{"message":{}}]}"#,
            r#"{"choices":[{"message":{"content":42}}]}"#,
            r#"{"choices":[{"message":{"content":"  \n "},"finish_reason":"length"}]}"#,
            r#"{"error":{"message":"model overloaded"}}"#,
        ] {
            let error = parse_completion(body).unwrap_err();
            assert_eq!(
                code(&error),
                FailureCode::GeneratorBadResponse.as_str(),
                "{body}: {error}"
            );
        }
        let error = parse_completion(r#"{"error":{"message":"model overloaded"}}"#).unwrap_err();
        assert!(error.to_string().contains("model overloaded"), "{error}");
        let error = parse_completion(
            r#"{"choices":[{"message":{"content":""},"finish_reason":"length"}]}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("finish reason: length"),
            "{error}"
        );
    }

    #[test]
    fn error_bodies_are_quoted_short() {
        assert_eq!(
            error_excerpt(r#"{"error":{"message":"Invalid API key","type":"auth"}}"#),
            "Invalid API key"
        );
        assert_eq!(
            error_excerpt(r#"{"error":"no such model"}"#),
            "no such model"
        );
        assert_eq!(
            error_excerpt(r#"{"object":"error","message":"bad input"}"#),
            "bad input"
        );
        assert_eq!(error_excerpt(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_excerpt("plain\n\ntext  here"), "plain text here");
        let long = "é".repeat(1000);
        let short = error_excerpt(&long);
        assert_eq!(short.chars().count(), EXCERPT_CHARS + 1);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn the_base_url_must_be_http_or_https() {
        assert!(OpenAi::new(config("http://127.0.0.1:11434/v1")).is_ok());
        assert!(OpenAi::new(config("HTTPS://api.example.com/v1/")).is_ok());
        for bad in [
            "",
            "127.0.0.1:11434/v1",
            "ftp://example.com",
            "http://",
            "http://exa mple.com",
            "http://example.com/v1?x=1",
        ] {
            let Err(message) = OpenAi::new(config(bad)) else {
                panic!("{bad:?} was accepted");
            };
            assert!(message.starts_with("the llm url"), "{bad:?}: {message}");
        }
        let Err(message) = OpenAi::new(OpenAiConfig {
            model: " ".into(),
            ..config("http://127.0.0.1/v1")
        }) else {
            panic!("an empty model was accepted");
        };
        assert!(message.contains("--llm-model"), "{message}");
    }

    #[test]
    fn the_endpoint_is_appended_once_and_credentials_in_the_url_are_not_shown() {
        let openai = OpenAi::new(config("http://user:secret@127.0.0.1:8080/v1/")).unwrap();
        assert_eq!(
            openai.endpoint,
            "http://user:secret@127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(
            openai.shown_endpoint,
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        let Err(message) = OpenAi::new(config("http://user:secret@host/v1?q")) else {
            panic!("a query was accepted");
        };
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_refused_connection_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let openai = OpenAi::new(config(&format!("http://127.0.0.1:{port}/v1"))).unwrap();
        let error = openai
            .complete(
                &Prompt {
                    system: "s".into(),
                    user: "u".into(),
                },
                100,
            )
            .unwrap_err();
        assert_eq!(code(&error), "transient", "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
    }

    #[test]
    fn an_echoed_api_key_is_redacted() {
        let openai = OpenAi::new(OpenAiConfig {
            api_key: Some("sk-very-secret".into()),
            ..config("http://127.0.0.1/v1")
        })
        .unwrap();
        let error = openai.redacted(classify_status(
            401,
            None,
            &error_excerpt(r#"{"error":{"message":"Incorrect API key provided: sk-very-secret"}}"#),
            &openai.context(),
        ));
        assert_eq!(code(&error), FailureCode::GeneratorAuth.as_str());
        assert!(!error.to_string().contains("sk-very-secret"), "{error}");
        assert!(error.to_string().contains("[redacted]"), "{error}");
    }
}
