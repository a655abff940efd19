//! Asking a model server whether it is there: its model list
//! (`GET {url}/models`) and, for the connection test, one tiny completion.
//! Used by `POST /api/settings/test` and by the reachability check that
//! `/api/health` reports (run by the sweeper and after every settings
//! change).
//!
//! Every message names the server's URL (without any `user:password@`) and
//! never the API key, even when the server quotes it back.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::generator::openai::OpenAiConfig;
use crate::run::Timestamp;

/// How long a check or a test waits for the server: a writer is waiting.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the background reachability check waits: it runs on the
/// sweeper's thread and after a settings save, which a writer waits for.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Tokens the test completion may take: enough for "OK".
const TEST_MAX_TOKENS: u32 = 8;
/// Largest model list read.
const MAX_LIST_BYTES: u64 = 4 * 1024 * 1024;

/// What `POST /api/settings/test` answers.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub ok: bool,
    pub models: Vec<String>,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last reachability check, as `/api/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Reachability {
    pub ok: bool,
    pub checked_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The URL as messages show it: without a `user:password@`.
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/{path}")
            }
            None => format!(
                "{scheme}://{}",
                rest.rsplit_once('@').map_or(rest, |(_, h)| h)
            ),
        },
        None => url.to_string(),
    }
}

/// A failure message without the key in it.
fn scrubbed(message: String, llm: &OpenAiConfig) -> String {
    match llm.api_key.as_deref() {
        Some(key) if !key.is_empty() => message.replace(key, "[redacted]"),
        _ => message,
    }
}

/// One exchange: `GET url` without a body, `POST url` with one.
fn request(
    agent: &ureq::Agent,
    url: &str,
    llm: &OpenAiConfig,
    body: Option<&Value>,
) -> Result<(u16, Vec<u8>), String> {
    let auth = llm.api_key.as_ref().map(|key| format!("Bearer {key}"));
    let result = match body {
        None => {
            let mut request = agent.get(url).header("Accept", "application/json");
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.call()
        }
        Some(body) => {
            let mut request = agent.post(url).header("Accept", "application/json");
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.send_json(body)
        }
    };
    let mut response = result.map_err(|e| match e {
        ureq::Error::Timeout(_) => format!(
            "it did not answer within {}",
            humantime::format_duration(agent.config().timeouts().global.unwrap_or(PROBE_TIMEOUT))
        ),
        ureq::Error::Io(io) => format!("the connection failed ({})", io.kind()),
        ureq::Error::HostNotFound => "its host name is not known".to_string(),
        ureq::Error::ConnectionFailed => "the connection was refused".to_string(),
        other => format!("the request failed ({other})"),
    })?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_LIST_BYTES)
        .read_to_vec()
        .map_err(|e| format!("its answer could not be read ({e})"))?;
    Ok((status, bytes))
}

fn status_problem(status: u16) -> String {
    match status {
        401 | 403 => format!("it refused the credentials (http {status}); check the API key"),
        404 => {
            format!("it answered not found (http {status}); check the URL (it usually ends in /v1)")
        }
        _ => format!("it answered http {status}"),
    }
}

/// `GET {url}/models`: the model names the server lists.
pub fn list_models(llm: &OpenAiConfig, timeout: Duration) -> Result<Vec<String>, String> {
    let base = llm.base_url.trim_end_matches('/');
    let shown = shown_url(base);
    let fail = |why: String| {
        scrubbed(
            format!("storyflow cannot reach the model server at {shown}: {why}"),
            llm,
        )
    };
    let (status, bytes) =
        request(&agent(timeout), &format!("{base}/models"), llm, None).map_err(fail)?;
    if !(200..300).contains(&status) {
        return Err(fail(status_problem(status)));
    }
    let list: Value = serde_json::from_slice(&bytes).map_err(|_| {
        fail("its model list is not JSON; is this an OpenAI-compatible server?".into())
    })?;
    let names = list["data"]
        .as_array()
        .or_else(|| list["models"].as_array())
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m["id"].as_str().or_else(|| m["name"].as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(names)
}

/// One tiny completion with `llm.model`.
fn tiny_completion(llm: &OpenAiConfig, timeout: Duration) -> Result<(), String> {
    let base = llm.base_url.trim_end_matches('/');
    let shown = shown_url(base);
    let fail = |why: String| {
        scrubbed(
            format!(
                "the model server at {shown} could not complete with model `{}`: {why}",
                llm.model
            ),
            llm,
        )
    };
    let mut body = json!({
        "model": llm.model,
        "messages": [{"role": "user", "content": "Reply with the word OK."}],
        "max_tokens": TEST_MAX_TOKENS,
        "stream": false,
    });
    if let Some(fields) = body.as_object_mut() {
        fields.extend(llm.extra_body.clone());
        // The test is tiny whatever the extra body asks.
        fields.insert("max_tokens".into(), json!(TEST_MAX_TOKENS));
    }
    let (status, bytes) = request(
        &agent(timeout),
        &format!("{base}/chat/completions"),
        llm,
        Some(&body),
    )
    .map_err(fail)?;
    if !(200..300).contains(&status) {
        return Err(fail(status_problem(status)));
    }
    let answer: Value =
        serde_json::from_slice(&bytes).map_err(|_| fail("its answer is not JSON".into()))?;
    if answer["choices"].as_array().is_none_or(Vec::is_empty) {
        return Err(fail("its answer holds no choices".into()));
    }
    Ok(())
}

/// The connection test: the model list, then one tiny completion.
pub fn test_connection(llm: &OpenAiConfig) -> TestReport {
    let started = Instant::now();
    let outcome = list_models(llm, PROBE_TIMEOUT)
        .and_then(|models| tiny_completion(llm, PROBE_TIMEOUT).map(|()| models));
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(models) => TestReport {
            ok: true,
            models,
            latency_ms,
            error: None,
        },
        Err(error) => TestReport {
            ok: false,
            models: Vec::new(),
            latency_ms,
            error: Some(error),
        },
    }
}

/// The answer for generators that need no server.
pub fn needs_no_server(name: &str) -> TestReport {
    TestReport {
        ok: true,
        models: vec![name.to_string()],
        latency_ms: 0,
        error: None,
    }
}
