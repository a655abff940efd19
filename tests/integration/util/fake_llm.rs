//! A fake OpenAI-compatible chat completions server on 127.0.0.1, the one
//! boundary the tests cannot run for real. It answers from a script first,
//! then from a responder function (by default: an outline when asked for
//! one, a summary when asked for one, else chapter text naming the request's
//! number), and records every request it received.
//!
//! Its `Text` and `Finish` completions carry a `usage` object as real servers
//! send one: by default the prompt tokens storyflow itself estimates (3.5
//! characters per token); [`FakeLlm::report_usage`] makes it report a share
//! of that (a server that cut the prompt) or none at all.
//!
//! Streaming (additive): [`Reply::Stream`] answers with server-sent events,
//! chunk by chunk (delays, a cut, usage in the last chunk);
//! [`FakeLlm::stream_when_asked`] streams `Text`/`Finish` answers to requests
//! that ask for a stream; [`FakeLlm::refuse_streams`] answers such requests
//! with an error status; [`FakeLlm::streams`] says how each stream went,
//! including when the client closed the connection.

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
    /// 200 with this JSON value as the whole body (content parts, extra
    /// fields such as `reasoning_content`, anything a real server sends).
    Json(Value),
    /// 200 with these bytes as the body, whether UTF-8 or not.
    Bytes(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
    /// Answers 200 with headers that promise a whole completion and the
    /// first part of its body, then sends nothing more until the server
    /// stops: a model server that hangs mid-answer.
    HangMidAnswer,
    /// 200 with a `text/event-stream` of chat completion chunks.
    Stream(StreamReply),
}

/// A streamed answer: one chunk per text, `delay` apart (the first after
/// `delay` too), then the finish reason, usage (when `usage`) and `[DONE]`.
/// With `cut_after: Some(k)`, the stream breaks after `k` chunks (a bad
/// chunk header, as a connection cut mid-answer reads to a client).
#[derive(Debug, Clone)]
pub struct StreamReply {
    pub chunks: Vec<String>,
    pub delay: Duration,
    pub cut_after: Option<usize>,
    pub usage: bool,
    pub finish: &'static str,
}

impl StreamReply {
    pub fn new(chunks: Vec<String>, delay: Duration) -> StreamReply {
        StreamReply {
            chunks,
            delay,
            cut_after: None,
            usage: true,
            finish: "stop",
        }
    }

    /// `text` in chunks of about `words` words each.
    pub fn words(text: &str, words: usize, delay: Duration) -> StreamReply {
        let all: Vec<&str> = text.split_inclusive(' ').collect();
        let chunks = all.chunks(words.max(1)).map(|c| c.concat()).collect();
        StreamReply::new(chunks, delay)
    }
}

/// How a streamed answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still sending.
    Running,
    /// Sent whole.
    Whole,
    /// Broken on purpose (`cut_after`).
    Cut,
    /// A write failed: the client closed the connection (first seen then).
    ClientClosed(Instant),
}

/// One streamed answer, as the fake server sent it.
#[derive(Debug, Clone)]
pub struct StreamLog {
    /// The request it answered (1-based, as [`FakeLlm::seen`] is ordered).
    pub request: usize,
    pub started: Instant,
    /// When each text chunk was written and flushed.
    pub chunk_times: Vec<Instant>,
    pub end: StreamEnd,
}

pub fn status(code: u16, body: &str) -> Reply {
    Reply::Status(code, body.to_string(), Vec::new())
}

/// 429 with `Retry-After: seconds`, as a rate-limited server answers.
pub fn rate_limited(seconds: &'static str) -> Reply {
    Reply::Status(
        429,
        r#"{"error": {"message": "rate limited", "type": "rate_limit_exceeded"}}"#.into(),
        vec![
            ("Retry-After", seconds),
            ("Content-Type", "application/json"),
        ],
    )
}

/// What the `usage` of a `Text` or `Finish` completion says.
#[derive(Debug, Clone, Copy)]
pub enum UsageReport {
    /// No `usage` object, as some servers answer.
    Absent,
    /// `prompt_tokens`: this share of the prompt's characters / 3.5 (1.0:
    /// all of what storyflow estimates it sent); `completion_tokens`: the
    /// answer's characters / 4.
    PromptShare(f64),
}

/// The `usage` one answer carried, with the number of the request it
/// answered (1-based, as [`FakeLlm::seen`] is ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentUsage {
    pub request: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl UsageReport {
    fn usage(self, seen: &Seen, text: &str, request: usize) -> Option<SentUsage> {
        let UsageReport::PromptShare(share) = self else {
            return None;
        };
        Some(SentUsage {
            request,
            prompt_tokens: (seen.prompt_chars() as f64 / 3.5 * share).floor() as u64,
            completion_tokens: text.chars().count().div_ceil(4) as u64,
        })
    }
}

/// A body that gives `prefix`, then blocks until `stop` is set.
struct StallingBody {
    prefix: std::io::Cursor<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl std::io::Read for StallingBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.prefix, buf)?;
        if n > 0 {
            return Ok(n);
        }
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(std::io::Error::other("the fake llm stopped"))
    }
}

/// A chat completion body with this message (any `content` shape, extra
/// fields) and `finish_reason`.
pub fn completion_with(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
    })
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

/// How the server treats requests that ask for a stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamPolicy {
    /// Answer them with this status (a server that refuses streaming).
    refuse: Option<u16>,
    /// Stream `Text`/`Finish` answers to them, chunks this far apart.
    stream_text: Option<Duration>,
}

pub struct FakeLlm {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    usage: Arc<Mutex<UsageReport>>,
    usage_sent: Arc<Mutex<Vec<SentUsage>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    streams: Arc<Mutex<Vec<StreamLog>>>,
    stream_policy: Arc<Mutex<StreamPolicy>>,
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
        let usage = Arc::new(Mutex::new(UsageReport::PromptShare(1.0)));
        let usage_sent = Arc::new(Mutex::new(Vec::new()));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let stream_policy = Arc::new(Mutex::new(StreamPolicy::default()));
        let thread = {
            let accounts = Accounts {
                seen: seen.clone(),
                usage: usage.clone(),
                usage_sent: usage_sent.clone(),
                streams: streams.clone(),
                stream_policy: stream_policy.clone(),
            };
            let stop = stop.clone();
            let responder: Responder = Box::new(responder);
            std::thread::spawn(move || serve(server, script.into(), &*responder, &accounts, &stop))
        };
        FakeLlm {
            url: format!("http://{addr}/v1"),
            seen,
            usage,
            usage_sent,
            stop,
            thread: Some(thread),
            streams,
            stream_policy,
        }
    }

    /// How every streamed answer went so far, in order.
    pub fn streams(&self) -> Vec<StreamLog> {
        self.streams.lock().unwrap().clone()
    }

    /// From now on, requests with `"stream": true` get this status (400: a
    /// server that does not stream).
    pub fn refuse_streams(&self, status: u16) {
        self.stream_policy.lock().unwrap().refuse = Some(status);
    }

    /// From now on, `Text` and `Finish` answers to requests that ask for a
    /// stream are streamed, a few words a chunk, `delay` apart.
    pub fn stream_when_asked(&self, delay: Duration) {
        self.stream_policy.lock().unwrap().stream_text = Some(delay);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// What the `usage` of the answers from now on says.
    pub fn report_usage(&self, report: UsageReport) {
        *self.usage.lock().unwrap() = report;
    }

    /// The `usage` objects sent so far, in order.
    pub fn usage_sent(&self) -> Vec<SentUsage> {
        self.usage_sent.lock().unwrap().clone()
    }

    /// `serve` arguments for this server. The default answers are a few
    /// words long, so `--min-chapter-words` is 1 unless `extra` sets it.
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
        if !extra.contains(&"--min-chapter-words") {
            args.extend_from_slice(&["--min-chapter-words", "1"]);
        }
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

/// What the serving thread records: the requests and the usage it sent.
struct Accounts {
    seen: Arc<Mutex<Vec<Seen>>>,
    usage: Arc<Mutex<UsageReport>>,
    usage_sent: Arc<Mutex<Vec<SentUsage>>>,
    streams: Arc<Mutex<Vec<StreamLog>>>,
    stream_policy: Arc<Mutex<StreamPolicy>>,
}

fn serve(
    server: tiny_http::Server,
    mut script: VecDeque<Reply>,
    responder: &(dyn Fn(&Seen, usize) -> Reply + Send),
    accounts: &Accounts,
    stop: &Arc<AtomicBool>,
) {
    let seen = &accounts.seen;
    // Requests left hanging stay open until the server stops.
    let mut parked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(20)) else {
            continue;
        };
        // The model list (storyflow's connection test and reachability
        // check) is answered apart: it is neither scripted nor recorded, so
        // the completions keep their numbers.
        if request.method() == &tiny_http::Method::Get && request.url().ends_with("/models") {
            let list = json!({"object": "list", "data": [
                {"id": "test-model", "object": "model"},
                {"id": "other-model", "object": "model"},
            ]});
            let _ = request.respond(
                tiny_http::Response::from_string(list.to_string()).with_header(
                    tiny_http::Header::from_bytes("Content-Type", "application/json")
                        .expect("a valid header"),
                ),
            );
            continue;
        }
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
        let policy = *accounts.stream_policy.lock().unwrap();
        let wants_stream = request_seen.body["stream"] == true;
        let reply = match (reply, policy) {
            (
                _,
                StreamPolicy {
                    refuse: Some(code), ..
                },
            ) if wants_stream => Reply::Status(
                code,
                r#"{"error": {"message": "streaming is not supported"}}"#.into(),
                vec![("Content-Type", "application/json")],
            ),
            (
                Reply::Text(text),
                StreamPolicy {
                    stream_text: Some(delay),
                    ..
                },
            ) if wants_stream => Reply::Stream(StreamReply::words(&text, 3, delay)),
            (
                Reply::Finish(text, finish),
                StreamPolicy {
                    stream_text: Some(delay),
                    ..
                },
            ) if wants_stream => Reply::Stream(StreamReply {
                finish,
                ..StreamReply::words(&text, 3, delay)
            }),
            (reply, _) => reply,
        };
        // A completion never delivered whole (`HangMidAnswer`) reports no usage.
        let completion = |text: String, finish: &str, delivered: bool| {
            let mut body = json!({
                "id": format!("chatcmpl-{number}"),
                "object": "chat.completion",
                "model": "test-model",
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": text}}],
            });
            let report = if delivered {
                *accounts.usage.lock().unwrap()
            } else {
                UsageReport::Absent
            };
            if let Some(usage) = report.usage(&request_seen, &text, number) {
                body["usage"] = json!({
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                });
                accounts.usage_sent.lock().unwrap().push(usage);
            }
            body.to_string()
        };
        let json_type = vec![("Content-Type", "application/json")];
        let (code, body, headers): (u16, Vec<u8>, _) = match reply {
            Reply::Hang => {
                parked.push(request);
                continue;
            }
            Reply::HangMidAnswer => {
                hang_mid_answer(request, &completion("The fog".into(), "stop", false), stop);
                continue;
            }
            Reply::Text(text) => (200, completion(text, "stop", true).into_bytes(), json_type),
            Reply::Finish(text, finish) => {
                (200, completion(text, finish, true).into_bytes(), json_type)
            }
            Reply::Status(code, body, headers) => (code, body.into_bytes(), headers),
            Reply::Json(value) => (200, value.to_string().into_bytes(), json_type),
            Reply::Bytes(bytes) => (200, bytes, json_type),
            Reply::Stream(stream) => {
                let text: String = stream.chunks.concat();
                let usage = if stream.usage && stream.cut_after.is_none() {
                    let report = *accounts.usage.lock().unwrap();
                    let usage = report.usage(&request_seen, &text, number);
                    if let Some(usage) = usage {
                        accounts.usage_sent.lock().unwrap().push(usage);
                    }
                    usage
                } else {
                    None
                };
                let log = {
                    let mut streams = accounts.streams.lock().unwrap();
                    streams.push(StreamLog {
                        request: number,
                        started: Instant::now(),
                        chunk_times: Vec::new(),
                        end: StreamEnd::Running,
                    });
                    (accounts.streams.clone(), streams.len() - 1)
                };
                std::thread::spawn(move || send_stream(request, stream, usage, log));
                continue;
            }
        };
        let mut response = tiny_http::Response::from_data(body).with_status_code(code);
        for (name, value) in headers {
            if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                response.add_header(header);
            }
        }
        let _ = request.respond(response);
    }
}

/// Responds on a thread of its own (the response never ends until `stop`),
/// so the server goes on answering other requests.
fn hang_mid_answer(request: tiny_http::Request, whole: &str, stop: &Arc<AtomicBool>) {
    let prefix = whole.as_bytes()[..whole.len() / 2].to_vec();
    let body = StallingBody {
        prefix: std::io::Cursor::new(prefix),
        stop: stop.clone(),
    };
    let headers = vec![tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap()];
    let response = tiny_http::Response::new(200.into(), headers, body, Some(whole.len()), None);
    std::thread::spawn(move || {
        let _ = request.respond(response);
    });
}

/// Writes one HTTP chunk and flushes it.
fn write_chunk(writer: &mut dyn std::io::Write, data: &str) -> std::io::Result<()> {
    write!(writer, "{:x}\r\n{data}\r\n", data.len())?;
    writer.flush()
}

/// Streams `reply` as chat completion chunks on the request's connection,
/// recording in `log` what was sent and how it ended.
fn send_stream(
    request: tiny_http::Request,
    reply: StreamReply,
    usage: Option<SentUsage>,
    (logs, index): (Arc<Mutex<Vec<StreamLog>>>, usize),
) {
    let end = |how: StreamEnd| logs.lock().unwrap()[index].end = how;
    let mut writer = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    let event = |value: Value| format!("data: {value}\n\n");
    let chunk = |delta: Value, finish: Value| {
        event(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "test-model",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut sent = writer.write_all(head.as_bytes()).and_then(|()| {
        write_chunk(
            &mut writer,
            &chunk(json!({"role": "assistant"}), Value::Null),
        )
    });
    for (n, text) in reply.chunks.iter().enumerate() {
        if sent.is_err() {
            break;
        }
        if reply.cut_after == Some(n) {
            // A chunk header that is not hex: the client reads a broken stream.
            let _ = writer.write_all(b"zz\r\n").and_then(|()| writer.flush());
            end(StreamEnd::Cut);
            return;
        }
        std::thread::sleep(reply.delay);
        sent = write_chunk(&mut writer, &chunk(json!({"content": text}), Value::Null));
        if sent.is_ok() {
            logs.lock().unwrap()[index].chunk_times.push(Instant::now());
        }
    }
    let mut tail = chunk(json!({}), json!(reply.finish));
    if let Some(usage) = usage {
        tail.push_str(&event(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens}})));
    }
    tail.push_str("data: [DONE]\n\n");
    let sent = sent
        .and_then(|()| write_chunk(&mut writer, &tail))
        .and_then(|()| writer.write_all(b"0\r\n\r\n"))
        .and_then(|()| writer.flush());
    match sent {
        Ok(()) => end(StreamEnd::Whole),
        Err(_) => end(StreamEnd::ClientClosed(Instant::now())),
    }
}
