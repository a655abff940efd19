//! `GET /api/runs/{id}/live`: a run's text as it is written, as a
//! `text/event-stream` of `chunk`, `saved` and `status` events (see
//! [`crate::live`]).
//!
//! A live connection lasts as long as its run, so it must not hold one of
//! the fixed request threads: once the edge checks passed and the run is
//! known to be active, the request is handed to a thread of its own, at
//! most [`MAX_VIEWERS`] at once (more are refused with 503 `UNAVAILABLE`).
//! Unknown runs (404) and finished runs (one `status` event, then the end)
//! are answered at once on the request thread, like any other request.
//!
//! The stream starts with the run's status, then the chapter being written
//! so far, then events as they come, a keep-alive comment every
//! [`KEEP_ALIVE`]; it ends after the run's final `status`, when the viewer
//! goes away, or when the viewer fell so far behind that the hub dropped it
//! (the browser's EventSource then reconnects and starts from the chapter
//! so far). A run that ends with no worker to say so (cancelled while
//! pending, finished by an external worker) is noticed by looking at its
//! row every [`STATUS_CHECK`].

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::edge::EdgePolicy;
use super::{Reply, Req};
use crate::app::App;
use crate::error::{Error, Result};
use crate::live::{LiveEvent, MAX_VIEWERS, ViewerSlot};
use crate::run::RunId;
use crate::store::RunStatus;

/// How often an idle stream sends a comment, so proxies and browsers keep it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often an idle stream looks at its run's row.
const STATUS_CHECK: Duration = Duration::from_secs(2);
/// How long a stream waits for an event before looking around.
const TICK: Duration = Duration::from_millis(500);

/// Whether the request is for a live stream (answered by [`open`]).
pub(super) fn is_live(req: &Req) -> bool {
    req.method == "GET" && matches!(req.segments().as_slice(), ["api", "runs", _, "live"])
}

/// The router's handler: what can be answered without holding the
/// connection. For a finished run, its one `status` event; for an active
/// one, its status and the chapter written so far (the socket server hands
/// active runs to [`open`] instead).
pub fn snapshot(app: &App, id: &str) -> Result<Reply> {
    let run = app.store.run(&RunId::parse(id)?)?;
    let mut body = LiveEvent::Status { status: run.status }.to_sse();
    if run.status.is_active()
        && let Some((chapter, text)) = app.live.so_far(&run.id)
    {
        let event = LiveEvent::Chunk {
            chapter,
            text,
            reset: true,
        };
        body.push_str(&event.to_sse());
    }
    Ok(Reply::bytes("text/event-stream", body))
}

/// Answers a live request: at once when it is refused or the run is over,
/// else on a thread of its own for as long as the run goes on.
pub(super) fn open(
    request: tiny_http::Request,
    req: &Req,
    app: &Arc<App>,
    policy: &Arc<EdgePolicy>,
) {
    let segments = req.segments();
    let id = segments.get(2).copied().unwrap_or_default();
    let run = RunId::parse(id)
        .map_err(Error::from)
        .and_then(|id| app.store.run(&id));
    let run = match run {
        Ok(run) if run.status.is_active() => run,
        Ok(_) | Err(_) => {
            let reply = super::dispatch(req, app);
            respond(request, reply, policy);
            return;
        }
    };
    let Some(slot) = app.live.take_slot() else {
        let err = Error::Unavailable {
            message: format!("{MAX_VIEWERS} live viewers are connected already"),
            hint: "close another live view, or poll GET /api/runs/{id}".into(),
        };
        respond(request, Reply::error(&err, &req.id), policy);
        return;
    };
    let (app, policy) = (app.clone(), policy.clone());
    let spawned = std::thread::Builder::new()
        .name("http-live".into())
        .spawn(move || stream(request, &run.id, &app, &policy, slot));
    if let Err(e) = spawned {
        log::warn!("could not start a live stream: {e}");
    }
}

fn respond(request: tiny_http::Request, reply: Reply, policy: &EdgePolicy) {
    if let Err(e) = request.respond(reply.into_response(policy)) {
        log::debug!("could not send the response: {e}");
    }
}

/// Writes the stream until the run ends or the viewer goes.
fn stream(
    request: tiny_http::Request,
    run: &RunId,
    app: &App,
    policy: &EdgePolicy,
    _slot: ViewerSlot,
) {
    // Subscribed before the status is read, so no event falls in between.
    let (viewer, events) = app.live.subscribe(run);
    let mut writer = request.into_writer();
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n",
    );
    for (name, value) in policy.response_headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if writer.write_all(head.as_bytes()).is_ok()
        && let Some(status) = current_status(app, run)
        && send(&mut writer, &LiveEvent::Status { status }.to_sse()).is_ok()
    {
        follow(&mut writer, &events, run, app, status);
    }
    // The last chunk: the response is whole, the connection may be reused.
    let _ = send(&mut writer, "");
    app.live.unsubscribe(run, viewer);
}

/// Relays the run's events until it ends; returns when the viewer goes.
fn follow(
    writer: &mut Box<dyn Write + Send>,
    events: &Receiver<LiveEvent>,
    run: &RunId,
    app: &App,
    mut status: RunStatus,
) {
    let (mut last_write, mut last_check) = (Instant::now(), Instant::now());
    while status.is_active() {
        let outcome = match events.recv_timeout(TICK) {
            Ok(event) => {
                if let LiveEvent::Status { status: now } = event {
                    status = now;
                }
                send(writer, &event.to_sse())
            }
            Err(RecvTimeoutError::Timeout) if last_check.elapsed() >= STATUS_CHECK => {
                last_check = Instant::now();
                match current_status(app, run) {
                    Some(now) if now.is_finished() => {
                        status = now;
                        send(writer, &LiveEvent::Status { status }.to_sse())
                    }
                    Some(_) => continue,
                    None => return,
                }
            }
            Err(RecvTimeoutError::Timeout) if last_write.elapsed() >= KEEP_ALIVE => {
                send(writer, ": keep-alive\n\n")
            }
            Err(RecvTimeoutError::Timeout) => continue,
            // The run's feed closed (it ended) or this viewer fell behind
            // and was dropped: say how the run stands and end.
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(now) = current_status(app, run).filter(|s| s.is_finished()) {
                    let _ = send(writer, &LiveEvent::Status { status: now }.to_sse());
                }
                return;
            }
        };
        if outcome.is_err() {
            log::debug!("live viewer of run {run} went away");
            return;
        }
        last_write = Instant::now();
    }
}

/// Writes `text` as one HTTP chunk and flushes it; empty, the last chunk.
fn send(writer: &mut Box<dyn Write + Send>, text: &str) -> std::io::Result<()> {
    write!(writer, "{:x}\r\n{text}\r\n", text.len())?;
    writer.flush()
}

/// The run's status in its row; `None` when it is gone (deleted).
fn current_status(app: &App, run: &RunId) -> Option<RunStatus> {
    match app.store.find_run(run) {
        Ok(found) => found.map(|run| run.status),
        Err(e) => {
            log::warn!("live view of run {run}: could not read the run ({e})");
            Some(RunStatus::Running)
        }
    }
}
