//! A streamed chat completion: server-sent events (`text/event-stream`) as
//! OpenAI-compatible servers send them for `"stream": true`, decoded
//! incrementally, and the chunks they carry assembled into one
//! [`RawCompletion`].
//!
//! [`SseDecoder`] follows the event-stream grammar of the HTML standard,
//! fed bytes as they arrive: lines end with CRLF, LF or CR (also when the CR
//! and LF arrive in different reads); a line starting with `:` is a comment
//! (servers send them as keep-alives); `data:` lines of one event are joined
//! with `\n`, one space after the colon removed; `event:`, `id:` and
//! `retry:` are ignored (chat completion streams carry everything in
//! `data`); an empty line ends an event, and an event still open when the
//! stream ends is dropped, as the standard says. No crate of the lists fits
//! a blocking reader, and the grammar is small.
//!
//! [`OpenAi`]'s streaming call is here too: the request on a thread of its
//! own that hands each event over a channel ([`Wire`]), the caller relaying
//! text to the task's live sink and watching its cancel token between
//! events, and the fallback to a plain request.
//!
//! [`StreamedAnswer`] reads each event's data: `[DONE]` ends the stream;
//! an `error` object sent inside the stream is classified as a 200 error
//! body is; `choices[0].delta.content` adds text; `finish_reason` is taken
//! from the last chunk that has one; `usage` from the (final) chunk that
//! carries it (`stream_options.include_usage`). A stream that ends before
//! a finish reason or `[DONE]` was cut: a transient failure, and nothing of
//! it is returned.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use super::answer::{answered_error, content_text, quoted_excerpt, reported_usage};
use super::{CANCEL_POLL, Exchange, HttpAnswer, MAX_ANSWER_BYTES, OpenAi, read_whole};
use crate::generator::{GenError, RawCompletion, Task, Usage};
use crate::run::FailureCode;

/// Decodes an event stream into the data of its events.
#[derive(Debug, Default)]
pub(super) struct SseDecoder {
    /// The current line's bytes (UTF-8 is checked once the line is whole).
    line: Vec<u8>,
    /// The data lines of the event being read.
    data: Vec<String>,
    /// The last byte was a CR: an LF right after it ends no second line.
    after_cr: bool,
}

/// A line of the stream that is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a line of the event stream is not valid UTF-8")]
pub(super) struct NotUtf8;

impl SseDecoder {
    /// Feeds bytes; returns the data of every event they complete.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, NotUtf8> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    let line = String::from_utf8(line).map_err(|_| NotUtf8)?;
                    if let Some(event) = self.end_line(&line) {
                        events.push(event);
                    }
                }
                other => self.line.push(other),
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            if self.data.is_empty() {
                return None;
            }
            return Some(std::mem::take(&mut self.data).join("\n"));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            self.data.push(value.to_string());
        }
        None
    }
}

/// What one event's data did to the answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Text to add (what viewers are shown as it comes).
    Text(String),
    /// Nothing to show: a role chunk, a finish reason, usage, a comment.
    Nothing,
    /// `[DONE]`: the stream is over.
    Done,
}

/// A streamed answer being assembled.
#[derive(Debug, Default)]
pub(super) struct StreamedAnswer {
    content: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl StreamedAnswer {
    /// Reads one event's data.
    pub(super) fn accept(&mut self, data: &str) -> Result<Step, GenError> {
        match data.trim() {
            "[DONE]" => {
                self.done = true;
                return Ok(Step::Done);
            }
            // An event with an empty `data:` line carries nothing.
            "" => return Ok(Step::Nothing),
            _ => {}
        }
        let value: Value = serde_json::from_str(data).map_err(|_| {
            GenError::permanent(
                FailureCode::GeneratorBadResponse,
                format!(
                    "the llm server streamed a chunk that is not json: {}",
                    quoted_excerpt(data)
                ),
            )
        })?;
        let choice = value.get("choices").and_then(|c| c.get(0));
        if choice.is_none() && value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(answered_error(&value, data));
        }
        if let Some(usage) = reported_usage(&value) {
            self.usage = Some(usage);
        }
        let Some(choice) = choice else {
            return Ok(Step::Nothing);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let content = choice
            .get("delta")
            .and_then(|delta| delta.get("content"))
            .unwrap_or(&Value::Null);
        let Some(text) = content_text(content) else {
            return Err(GenError::permanent(
                FailureCode::GeneratorBadResponse,
                format!(
                    "the llm server streamed content that is not text: {}",
                    quoted_excerpt(data)
                ),
            ));
        };
        if text.is_empty() {
            return Ok(Step::Nothing);
        }
        self.content.push_str(&text);
        Ok(Step::Text(text))
    }

    /// The answer once the stream ended: whole when it said `[DONE]` or
    /// gave a finish reason, else cut mid-way (transient: asked again).
    pub(super) fn finish(self, endpoint: &str) -> Result<RawCompletion, GenError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(GenError::transient(format!(
                "the llm server at {endpoint} ended its stream mid-answer (after {} characters); nothing of it is kept",
                self.content.chars().count()
            )));
        }
        Ok(RawCompletion::text(self.content)
            .with_finish_reason(self.finish_reason.as_deref())
            .with_usage(self.usage))
    }
}

/// A whole body that holds an event stream (a server that streams without
/// saying `text/event-stream`), assembled as if it had been streamed.
pub(super) fn parse_stream_body(body: &str, endpoint: &str) -> Result<RawCompletion, GenError> {
    let mut decoder = SseDecoder::default();
    let mut answer = StreamedAnswer::default();
    let events = decoder
        .feed(body.as_bytes())
        .map_err(|e| GenError::permanent(FailureCode::GeneratorBadResponse, e.to_string()))?;
    for data in events {
        if answer.accept(&data)? == Step::Done {
            break;
        }
    }
    answer.finish(endpoint)
}

impl OpenAi {
    /// Asks for a stream and relays it; falls back to a plain request when
    /// the server refuses one.
    pub(super) fn complete_streaming(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        if task.cancel.is_cancelled() {
            return Err(GenError::Cancelled);
        }
        let exchange = self.exchange(self.request_body(&task.prompt, task.max_tokens, true));
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("llm-stream".into())
            .spawn(move || exchange.stream(&sender))
            .map_err(|e| GenError::transient(format!("could not start the llm request: {e}")))?;
        let started = Instant::now();
        let mut answer = StreamedAnswer::default();
        let mut first_token = None;
        loop {
            let wire = match receiver.recv_timeout(CANCEL_POLL) {
                Ok(wire) => wire,
                Err(mpsc::RecvTimeoutError::Timeout) if task.cancel.is_cancelled() => {
                    return Err(GenError::Cancelled);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(GenError::transient(
                        "the llm stream ended without an answer (its thread failed)",
                    ));
                }
            };
            match wire {
                Wire::Failed(error) => return Err(self.classify_transport(error)),
                Wire::Whole(whole) => return self.unstreamed(whole, task),
                Wire::Event(data) => match answer.accept(&data).map_err(|e| self.redacted(e))? {
                    Step::Text(text) => {
                        first_token.get_or_insert_with(|| started.elapsed());
                        if let Some(live) = task.live {
                            live.push(&text);
                        }
                    }
                    Step::Done => break,
                    Step::Nothing => {}
                },
                Wire::End => break,
                Wire::Broken(why) => {
                    return Err(GenError::transient(format!(
                        "the stream from the llm server at {} broke mid-answer ({why}); nothing of it is kept",
                        self.shown_endpoint
                    )));
                }
                Wire::NotUtf8 => {
                    return Err(GenError::permanent(
                        FailureCode::GeneratorBadResponse,
                        format!(
                            "the llm server at {} streamed a line that is not valid UTF-8",
                            self.shown_endpoint
                        ),
                    ));
                }
            }
            // Between chunks: a cancelled call reads no further.
            if task.cancel.is_cancelled() {
                return Err(GenError::Cancelled);
            }
        }
        let mut raw = answer.finish(&self.shown_endpoint)?;
        raw.first_token = first_token;
        Ok(raw)
    }

    /// A streaming request answered without a stream: refused (asked again
    /// plainly), or answered whole (taken as it is).
    fn unstreamed(&self, answer: HttpAnswer, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        if matches!(answer.status, 400 | 404 | 422) {
            self.stop_streaming(&format!(
                "it answered a streaming request with status {}",
                answer.status
            ));
            return self.complete(&task.prompt, task.max_tokens, task.cancel);
        }
        let looks_json = answer
            .body
            .as_ref()
            .is_ok_and(|body| body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
        if (200..300).contains(&answer.status) && looks_json {
            self.stop_streaming("it answered a streaming request with a whole JSON completion");
        }
        self.judge(answer)
    }

    /// Remembers that this server does not stream; says so once.
    fn stop_streaming(&self, why: &str) {
        if self.streaming.swap(false, Ordering::Relaxed) {
            log::warn!(
                "the llm server at {} does not stream ({why}); asking without streaming from now on, so the page shows chapters only once written",
                self.shown_endpoint
            );
        }
    }
}

/// What the thread reading a stream hands to the caller.
enum Wire {
    /// The request failed before any answer.
    Failed(ureq::Error),
    /// The server answered without an event stream: the answer, read whole.
    Whole(HttpAnswer),
    /// One event's data.
    Event(String),
    /// The stream ended.
    End,
    /// Reading failed mid-stream (the connection broke, the answer grew
    /// past the limit).
    Broken(String),
    /// A line of the stream was not UTF-8.
    NotUtf8,
}

impl Exchange {
    /// Sends a streaming request and hands what comes back to `sender`,
    /// event by event; stops reading (and so closes the connection) as soon
    /// as nobody receives.
    fn stream(self, sender: &mpsc::Sender<Wire>) {
        let response = match self.send_with("text/event-stream") {
            Ok(response) => response,
            Err(error) => {
                let _ = sender.send(Wire::Failed(error));
                return;
            }
        };
        let event_stream = response.status().is_success()
            && response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"));
        if !event_stream {
            let _ = sender.send(Wire::Whole(read_whole(response)));
            return;
        }
        let mut reader = response.into_body().into_reader();
        let mut decoder = SseDecoder::default();
        let mut buffer = [0u8; 8192];
        let mut total = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => {
                    let _ = sender.send(Wire::End);
                    return;
                }
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = sender.send(Wire::Broken(e.to_string()));
                    return;
                }
            };
            total += read as u64;
            if total > MAX_ANSWER_BYTES {
                let _ = sender.send(Wire::Broken("the answer grew past 16 MiB".into()));
                return;
            }
            let Ok(events) = decoder.feed(&buffer[..read]) else {
                let _ = sender.send(Wire::NotUtf8);
                return;
            };
            for data in events {
                if sender.send(Wire::Event(data)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(stream: &[u8], piece: usize) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        stream
            .chunks(piece)
            .flat_map(|bytes| decoder.feed(bytes).unwrap())
            .collect()
    }

    #[test]
    fn events_are_found_whatever_the_line_ends_and_the_read_sizes() {
        let stream = b": keep-alive\r\n\r\nevent: message\nid: 7\ndata: one\r\n\r\ndata:two\rdata:  three\r\rretry: 10\ndata\n\n";
        for piece in 1..stream.len() {
            assert_eq!(
                decode_in_pieces(stream, piece),
                ["one", "two\n three", ""],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn an_event_left_open_at_the_end_is_dropped() {
        assert_eq!(
            decode_in_pieces(b"data: a\n\ndata: b\n", 3),
            ["a"],
            "the standard drops an unfinished event"
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error() {
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.feed(b"data: \xff\n\n"), Err(NotUtf8));
    }

    fn chunk(content: &str) -> String {
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
            .to_string()
    }

    #[test]
    fn chunks_assemble_with_the_last_finish_reason_and_the_final_usage() {
        let mut answer = StreamedAnswer::default();
        assert_eq!(
            answer
                .accept(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#)
                .unwrap(),
            Step::Nothing
        );
        assert_eq!(
            answer.accept(&chunk("Fog ")).unwrap(),
            Step::Text("Fog ".into())
        );
        assert_eq!(
            answer.accept(&chunk("lifts.")).unwrap(),
            Step::Text("lifts.".into())
        );
        answer
            .accept(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#)
            .unwrap();
        answer
            .accept(r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#)
            .unwrap();
        assert_eq!(answer.accept("[DONE]").unwrap(), Step::Done);
        let raw = answer.finish("x").unwrap();
        assert_eq!(raw.content, b"Fog lifts.");
        assert_eq!(raw.finish_reason.as_deref(), Some("length"));
        assert_eq!(
            raw.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn a_stream_cut_before_its_end_is_transient_and_keeps_nothing() {
        let mut answer = StreamedAnswer::default();
        answer.accept(&chunk("Half a ")).unwrap();
        let error = answer.finish("http://x").unwrap_err();
        assert!(matches!(error, GenError::Transient { .. }), "{error:?}");
        assert!(error.to_string().contains("mid-answer"), "{error}");
    }

    #[test]
    fn a_finish_reason_without_done_is_a_whole_answer() {
        let mut answer = StreamedAnswer::default();
        answer
            .accept(r#"{"choices":[{"delta":{"content":"End."},"finish_reason":"stop"}]}"#)
            .unwrap();
        assert_eq!(answer.finish("x").unwrap().content, b"End.");
    }

    #[test]
    fn an_error_inside_the_stream_is_classified_by_what_it_says() {
        let mut answer = StreamedAnswer::default();
        let busy = answer
            .accept(r#"{"error":{"message":"the model is overloaded, try again"}}"#)
            .unwrap_err();
        assert!(matches!(busy, GenError::Transient { .. }), "{busy:?}");
        let bad = answer
            .accept(r#"{"error":{"message":"unknown model"}}"#)
            .unwrap_err();
        assert!(matches!(bad, GenError::Permanent { .. }), "{bad:?}");
        let garbled = answer.accept("{not json").unwrap_err();
        assert!(matches!(garbled, GenError::Permanent { .. }), "{garbled:?}");
    }

    #[test]
    fn a_whole_body_holding_a_stream_is_assembled() {
        let body = format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            chunk("A "),
            chunk("tide.")
        );
        assert_eq!(parse_stream_body(&body, "x").unwrap().content, b"A tide.");
    }
}
