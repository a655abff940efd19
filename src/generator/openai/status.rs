//! How a failed exchange with an OpenAI-compatible server is classified:
//! by HTTP status, by transport error, and the server's `Retry-After`.

use crate::run::FailureCode;
use std::time::Duration;

use crate::generator::GenError;

/// What a message about a failed request names.
pub(super) struct Context<'a> {
    pub(super) endpoint: &'a str,
    pub(super) model: &'a str,
    pub(super) has_key: bool,
}

/// Classifies a non-2xx answer.
pub(super) fn classify_status(
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
pub(super) fn classify_transport(
    error: ureq::Error,
    endpoint: &str,
    timeout: Duration,
) -> GenError {
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
pub(super) fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::openai::code;

    const CONTEXT: Context<'static> = Context {
        endpoint: "http://127.0.0.1:9/v1/chat/completions",
        model: "test-model",
        has_key: false,
    };

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
}
