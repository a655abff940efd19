//! OpenAI-compatible chat completions: OpenAI itself, Ollama, llama.cpp
//! server, vLLM and anything else that answers `POST {base}/chat/completions`.
//!
//! One request per outline or chapter: the system and user parts of the
//! [`prompts`](super::prompts) as two messages, the text from `choices[0].message.content`
//! (a string, or an array of text parts, joined) with its `finish_reason`,
//! returned raw for [`super::clean`] to judge. Separate `reasoning_content`
//! or `reasoning` fields are never read.
//!
//! Every failure is classified once: in `status` (HTTP status, transport
//! errors, `Retry-After`) and `answer` (what a 2xx body holds): timeouts, broken
//! connections, 408, 429 and 5xx are transient (with the server's
//! `Retry-After` when it sends one); 401/403, 404, other 4xx and malformed
//! answers are permanent. A 200 whose body is an error object is classified
//! by its content: overloaded, rate limited, busy, "try again" and the like
//! are transient, anything else permanent. A body that is not UTF-8 is a
//! `GENERATOR_BAD_RESPONSE`, never decoded lossily. This backend never
//! retries by itself: the engine does.
//!
//! Streaming (`stream.rs`): every call asks for a stream first (`"stream":
//! true`, `"stream_options": {"include_usage": true}`) and pushes the text
//! into the task's [`LiveSink`](super::LiveSink) as it arrives; the assembled
//! text is returned raw like a plain answer, so one cleaning path judges
//! both. A stream cut before its end is a transient failure and nothing of
//! it is returned. A server that refuses streaming (400, 404 or 422 to a
//! streaming request) is asked again without it; one that answers with a
//! plain JSON completion is taken at its word. Either way the backend
//! remembers it and asks without streaming for the rest of the process
//! (logged once): a refused request costs a round trip each time otherwise.
//! Time to first token is measured from the request to the first text.
//!
//! Cancel: the HTTP exchange runs on a thread of its own and the caller
//! waits for it on a channel, looking at the task's [`CancelToken`] every
//! `CANCEL_POLL` (50 ms). When the token is cancelled the caller returns
//! [`GenError::Cancelled`] at once and the exchange is abandoned: its thread
//! ends by itself when the server answers or `--llm-timeout` passes, and its
//! result is dropped. (ureq is blocking and cannot be interrupted from
//! outside; a thread per call costs nothing next to an LLM's answer.) A
//! stream is read on such a thread too, which hands each event over a
//! channel; the caller looks at the token between events, and once it has
//! returned, the reader's next hand-over fails and it drops the response,
//! closing the connection: a cancelled stream is closed with its next chunk.
//!
//! Invariant: the API key is sent only in the `Authorization` header and
//! never appears in an error message, even when a server echoes it back.

use crate::run::FailureCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

mod answer;
mod status;
mod stream;

use answer::{error_excerpt, parse_completion};
use status::{Context, classify_status, classify_transport, retry_after};
use stream::parse_stream_body;

use super::{GenError, Generator, Prompt, RawCompletion, Task};
use crate::cancel::CancelToken;

/// Largest answer read from the server; chat completions are far smaller.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;
/// How often a caller waiting for an answer looks at its cancel token: well
/// within the 2 seconds a cancel may take.
const CANCEL_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL, such as `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Fields merged into every request body (`--llm-extra-body`), such as
    /// `{"options": {"num_ctx": 16384}}` for Ollama. Never `messages` or
    /// `stream`: [`extra_body`] refuses them.
    pub extra_body: serde_json::Map<String, serde_json::Value>,
}

/// Reads `--llm-extra-body`: a JSON object whose fields go into every
/// request. `messages` and `stream` are storyflow's to set and are refused.
pub fn extra_body(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let serde_json::Value::Object(fields) = value else {
        return Err("must be a JSON object, such as {\"options\": {\"num_ctx\": 16384}}".into());
    };
    if let Some(key) = ["messages", "stream"]
        .iter()
        .find(|k| fields.contains_key(**k))
    {
        return Err(format!("may not set `{key}`: storyflow writes it"));
    }
    Ok(fields)
}

pub struct OpenAi {
    /// `{base}/chat/completions`.
    endpoint: String,
    /// The endpoint without any `user:password@`, for messages.
    shown_endpoint: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    extra_body: serde_json::Map<String, serde_json::Value>,
    agent: ureq::Agent,
    /// Cleared for good once the server refused a stream.
    streaming: AtomicBool,
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
            extra_body: config.extra_body,
            agent,
            streaming: AtomicBool::new(true),
        })
    }

    /// The request body: the prompt as two messages, then the writer's
    /// extra fields (which win over storyflow's defaults, a model's own
    /// `max_tokens` say; `messages` and `stream` were refused).
    fn request_body(&self, prompt: &Prompt, max_tokens: u32, stream: bool) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": max_tokens,
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(fields) = body.as_object_mut() {
            fields.extend(self.extra_body.clone());
        }
        body
    }

    fn exchange(&self, body: Value) -> Exchange {
        Exchange {
            agent: self.agent.clone(),
            endpoint: self.endpoint.clone(),
            api_key: self.api_key.clone(),
            body,
        }
    }

    /// Sends one chat completion and returns its raw content, abandoning it
    /// when `cancel` is cancelled.
    fn complete(
        &self,
        prompt: &Prompt,
        max_tokens: u32,
        cancel: &CancelToken,
    ) -> Result<RawCompletion, GenError> {
        if cancel.is_cancelled() {
            return Err(GenError::Cancelled);
        }
        let exchange = self.exchange(self.request_body(prompt, max_tokens, false));
        let answer = abandonable(cancel, move || exchange.send())?
            .map_err(|e| self.classify_transport(e))?;
        self.judge(answer)
    }

    /// What an answer read whole holds: an error by its status, else the
    /// completion (a JSON body, or an event stream sent without saying so).
    fn judge(&self, answer: HttpAnswer) -> Result<RawCompletion, GenError> {
        let HttpAnswer {
            status,
            retry_after,
            body,
        } = answer;
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
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            GenError::permanent(
                FailureCode::GeneratorBadResponse,
                format!(
                    "the llm server at {} sent an answer that is not valid UTF-8 (at byte {})",
                    self.shown_endpoint,
                    e.valid_up_to()
                ),
            )
        })?;
        let start = text.trim_start();
        let result = if start.starts_with("data:") || start.starts_with(':') {
            parse_stream_body(text, &self.shown_endpoint)
        } else {
            parse_completion(text)
        };
        result.map_err(|e| self.redacted(e))
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
            GenError::BadAnswer { message } => GenError::BadAnswer {
                message: scrub(message),
            },
            GenError::Cancelled => GenError::Cancelled,
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

    fn model(&self) -> &str {
        &self.model
    }

    fn reports_truncation(&self) -> bool {
        true
    }

    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        if self.streaming.load(Ordering::Relaxed) {
            self.complete_streaming(task)
        } else {
            self.complete(&task.prompt, task.max_tokens, task.cancel)
        }
    }
}

/// One chat completion request, owned, so it can run on its own thread.
struct Exchange {
    agent: ureq::Agent,
    endpoint: String,
    api_key: Option<String>,
    body: Value,
}

/// What came back over HTTP, before any judgement.
struct HttpAnswer {
    status: u16,
    retry_after: Option<Duration>,
    body: Result<Vec<u8>, ureq::Error>,
}

impl Exchange {
    fn send_with(&self, accept: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Accept", accept)
            .header(
                "User-Agent",
                concat!("storyflow/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        request.send_json(&self.body)
    }

    fn send(self) -> Result<HttpAnswer, ureq::Error> {
        Ok(read_whole(self.send_with("application/json")?))
    }
}

/// Reads an answer whole, within [`MAX_ANSWER_BYTES`].
fn read_whole(mut response: ureq::http::Response<ureq::Body>) -> HttpAnswer {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec();
    HttpAnswer {
        status,
        retry_after,
        body,
    }
}

/// Runs `call` on a thread of its own and waits for its result, or returns
/// [`GenError::Cancelled`] within [`CANCEL_POLL`] of `cancel` being
/// cancelled, leaving the thread to finish unobserved.
fn abandonable<T: Send + 'static>(
    cancel: &CancelToken,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, GenError> {
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("llm-call".into())
        .spawn(move || {
            // The caller may have gone (cancelled): then nobody wants it.
            let _ = sender.send(call());
        })
        .map_err(|e| GenError::transient(format!("could not start the llm request: {e}")))?;
    loop {
        match receiver.recv_timeout(CANCEL_POLL) {
            Ok(result) => return Ok(result),
            Err(mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                return Err(GenError::Cancelled);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(GenError::transient(
                    "the llm request ended without an answer (its thread failed)",
                ));
            }
        }
    }
}

/// Checks a server's base URL as [`OpenAi::new`] would, for settings saved
/// before any request: the URL without trailing slashes, or why not.
pub fn check_base_url(raw: &str) -> Result<String, String> {
    validate_base_url(raw)
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

/// An error's code, or what kind of non-permanent error it is.
#[cfg(test)]
fn code(error: &GenError) -> &'static str {
    match error {
        GenError::Permanent { code, .. } => code.as_str(),
        GenError::Transient { .. } => "transient",
        GenError::BadAnswer { .. } => "bad answer",
        GenError::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Prompt {
        Prompt {
            system: "s".into(),
            user: "u".into(),
        }
    }

    /// A loopback server that accepts one connection, reads the request and
    /// answers `reply` (or never answers when `None`).
    fn one_shot_server(reply: Option<Vec<u8>>) -> (String, std::sync::mpsc::Receiver<()>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let (connected, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = connected.send(());
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            match reply {
                Some(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                }
                None => std::thread::sleep(Duration::from_secs(30)),
            }
        });
        (url, seen)
    }

    fn config(base_url: &str) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            model: "test-model".into(),
            api_key: None,
            timeout: Duration::from_secs(1),
            extra_body: serde_json::Map::new(),
        }
    }

    #[test]
    fn extra_body_fields_are_an_object_that_leaves_messages_and_stream_alone() {
        let fields = extra_body(r#"{"options": {"num_ctx": 16384}, "keep_alive": "5m"}"#).unwrap();
        assert_eq!(fields["options"]["num_ctx"], 16384);
        for bad in [
            "[1]",
            "not json",
            r#"{"messages": []}"#,
            r#"{"stream": true}"#,
        ] {
            assert!(extra_body(bad).is_err(), "{bad} was accepted");
        }
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
            .complete(&prompt(), 100, &CancelToken::new())
            .unwrap_err();
        assert_eq!(code(&error), "transient", "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_a_bad_response_never_replaced() {
        let body = b"{\"choices\":[{\"message\":{\"content\":\"It \xff rained.\"}}]}".to_vec();
        let (url, _) = one_shot_server(Some(body));
        let openai = OpenAi::new(config(&url)).unwrap();
        let error = openai
            .complete(&prompt(), 100, &CancelToken::new())
            .unwrap_err();
        assert_eq!(
            code(&error),
            FailureCode::GeneratorBadResponse.as_str(),
            "{error}"
        );
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }

    #[test]
    fn cancel_abandons_a_call_in_flight_within_two_seconds() {
        let (url, seen) = one_shot_server(None);
        let openai = OpenAi::new(OpenAiConfig {
            timeout: Duration::from_secs(60),
            ..config(&url)
        })
        .unwrap();
        let cancel = CancelToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                seen.recv_timeout(Duration::from_secs(10)).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                cancel.cancel();
                std::time::Instant::now()
            })
        };
        let error = openai.complete(&prompt(), 100, &cancel).unwrap_err();
        let cancelled_at = canceller.join().unwrap();
        assert_eq!(error, GenError::Cancelled);
        assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_call_with_a_cancelled_token_sends_nothing() {
        let (url, seen) = one_shot_server(None);
        let openai = OpenAi::new(config(&url)).unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        assert_eq!(
            openai.complete(&prompt(), 100, &cancel),
            Err(GenError::Cancelled)
        );
        assert!(seen.recv_timeout(Duration::from_millis(300)).is_err());
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
