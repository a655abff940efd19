//! A fake OpenAI-compatible chat completions server on 127.0.0.1, the one
//! boundary the tests cannot run for real. It answers from a script first,
//! then from a responder function (by default: an outline when asked for
//! one, a summary when asked for one, else chapter text naming the request's
//! number), and records every request it received.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the fake server does with one request.
pub enum Reply {
    /// 200 with a chat completion whose content is this text.
    Text(String),
    /// 200 with this text and this `finish_reason` (`"length"`: cut off).
    Finish(String, &'static str),
    /// This status, body and extra headers.
    Status(u16, String, Vec<(&'static str, &'static str)>),
    /// Reads the request and never answers.
    Hang,
}

pub fn status(code: u16, body: &str) -> Reply {
    Reply::Status(code, body.to_string(), Vec::new())
}

/// A request the fake server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    /// The raw body's length in characters.
    pub chars: usize,
}

impl Seen {
    pub fn user_prompt(&self) -> &str {
        self.body["messages"][1]["content"].as_str().unwrap_or("")
    }

    /// All message contents together.
    pub fn prompt_chars(&self) -> usize {
        self.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| m["content"].as_str().unwrap_or("").chars().count())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// A request for a chapter's summary (written after each chapter).
    pub fn is_summary(&self) -> bool {
        self.user_prompt().contains("Summarise what happens")
    }

    pub fn is_outline(&self) -> bool {
        self.user_prompt().contains("Write an outline")
    }

    pub fn is_continuation(&self) -> bool {
        self.user_prompt().contains("were cut off")
    }
}

/// The requests that asked for outlines and chapters, not summaries.
pub fn writing(seen: &[Seen]) -> Vec<Seen> {
    seen.iter().filter(|s| !s.is_summary()).cloned().collect()
}

type Responder = Box<dyn Fn(&Seen, usize) -> Reply + Send>;

pub struct FakeLlm {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The default answers: an outline, a summary, or chapter text.
pub fn default_reply(seen: &Seen, number: usize) -> Reply {
    if seen.is_outline() {
        Reply::Text(super::outline(2))
    } else if seen.is_summary() {
        Reply::Text(format!("Summary {number}."))
    } else {
        Reply::Text(format!("Fog over the marsh, reply {number}."))
    }
}

impl FakeLlm {
    pub fn start(script: Vec<Reply>) -> FakeLlm {
        FakeLlm::with_responder(script, default_reply)
    }

    pub fn with_responder(
        script: Vec<Reply>,
        responder: impl Fn(&Seen, usize) -> Reply + Send + 'static,
    ) -> FakeLlm {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the fake llm");
        let addr = server.server_addr().to_ip().expect("an ip address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let seen = seen.clone();
            let stop = stop.clone();
            let responder: Responder = Box::new(responder);
            std::thread::spawn(move || serve(server, script.into(), &*responder, &seen, &stop))
        };
        FakeLlm {
            url: format!("http://{addr}/v1"),
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `serve` arguments for this server.
    pub fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "--generator",
            "openai",
            "--llm-url",
            &self.url,
            "--llm-model",
            "test-model",
            "--retry-base-ms",
            "10",
        ];
        args.extend_from_slice(extra);
        args
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    server: tiny_http::Server,
    mut script: VecDeque<Reply>,
    responder: &(dyn Fn(&Seen, usize) -> Reply + Send),
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) {
    // Requests left hanging stay open until the server stops.
    let mut parked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(20)) else {
            continue;
        };
        let mut raw = String::new();
        let _ = request.as_reader().read_to_string(&mut raw);
        let authorization = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.to_string());
        let request_seen = Seen {
            at: Instant::now(),
            path: request.url().to_string(),
            authorization,
            chars: raw.chars().count(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        };
        let number = {
            let mut seen = seen.lock().unwrap();
            seen.push(request_seen.clone());
            seen.len()
        };
        let reply = script
            .pop_front()
            .unwrap_or_else(|| responder(&request_seen, number));
        let completion = |text: String, finish: &str| {
            json!({
                "id": format!("chatcmpl-{number}"),
                "object": "chat.completion",
                "model": "test-model",
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": text}}],
            })
            .to_string()
        };
        let json_type = vec![("Content-Type", "application/json")];
        let (code, body, headers) = match reply {
            Reply::Hang => {
                parked.push(request);
                continue;
            }
            Reply::Text(text) => (200, completion(text, "stop"), json_type),
            Reply::Finish(text, finish) => (200, completion(text, finish), json_type),
            Reply::Status(code, body, headers) => (code, body, headers),
        };
        let mut response = tiny_http::Response::from_string(body).with_status_code(code);
        for (name, value) in headers {
            if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                response.add_header(header);
            }
        }
        let _ = request.respond(response);
    }
}
