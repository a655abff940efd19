//! Live text: what the engine publishes while a run writes, relayed to the
//! page's viewers (`GET /api/runs/{id}/live`).
//!
//! [`LiveHub`] (held by the app) keeps, per run, its viewers and the text of
//! the chapter being written so far, so a viewer who joins mid-chapter gets
//! it first. Each viewer is a bounded channel filled with `try_send`: a
//! viewer whose channel is full (it does not read) or closed is dropped, and
//! the worker never waits for one. Events: `chunk` `{chapter, text}` (with
//! `"reset": true` when `text` is the whole chapter so far, replacing what
//! the viewer shows: on joining, and when an attempt starts over), `saved`
//! `{chapter}` once the chapter's transaction committed, `status`
//! `{status}` when the run starts and ends.
//!
//! [`ThinkFilter`] keeps reasoning (`<think>…</think>`, `<thinking>`, any
//! letter case, tags split across chunks) out of what viewers see. It only
//! shapes the preview: what is saved is decided by the cleaning of the whole
//! answer (`generator::clean`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::run::{RunId, RunStatus};

/// Events a viewer may fall behind by before it is dropped.
pub const VIEWER_BUFFER: usize = 256;
/// Live connections served at once; more are refused (503).
pub const MAX_VIEWERS: usize = 64;

/// One event for viewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    Chunk {
        chapter: u32,
        text: String,
        /// `text` is the whole chapter so far, not a piece to append.
        reset: bool,
    },
    Saved {
        chapter: u32,
    },
    Status {
        status: RunStatus,
    },
}

impl LiveEvent {
    /// The event in `text/event-stream` form.
    pub fn to_sse(&self) -> String {
        let (name, data) = match self {
            LiveEvent::Chunk {
                chapter,
                text,
                reset: false,
            } => ("chunk", json!({"chapter": chapter, "text": text})),
            LiveEvent::Chunk { chapter, text, .. } => (
                "chunk",
                json!({"chapter": chapter, "text": text, "reset": true}),
            ),
            LiveEvent::Saved { chapter } => ("saved", json!({"chapter": chapter})),
            LiveEvent::Status { status } => ("status", json!({"status": status})),
        };
        // JSON text holds no raw newline, so one `data:` line carries it.
        format!("event: {name}\ndata: {data}\n\n")
    }
}

/// One viewer among a run's, for [`LiveHub::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerId(u64);

#[derive(Default)]
struct Feed {
    viewers: Vec<(ViewerId, SyncSender<LiveEvent>)>,
    /// The chapter being written and its text so far.
    chapter: Option<(u32, String)>,
}

impl Feed {
    fn send(&mut self, event: &LiveEvent) {
        self.viewers
            .retain(|(_, viewer)| match viewer.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
    }
}

/// The runs being watched or written, and their viewers.
#[derive(Default)]
pub struct LiveHub {
    feeds: Mutex<HashMap<RunId, Feed>>,
    connections: Arc<AtomicUsize>,
    next_viewer: AtomicU64,
}

/// A live connection's place among [`MAX_VIEWERS`]; freed on drop.
pub struct ViewerSlot {
    connections: Arc<AtomicUsize>,
}

impl Drop for ViewerSlot {
    fn drop(&mut self) {
        self.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LiveHub {
    fn with_feed(&self, run: &RunId, change: impl FnOnce(&mut Feed)) {
        // A panic elsewhere while holding the lock leaves plain data behind.
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        change(feeds.entry(run.clone()).or_default());
    }

    /// A place for one more live connection, if there is one.
    pub fn take_slot(&self) -> Option<ViewerSlot> {
        let taken = self
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_VIEWERS).then_some(n + 1)
            });
        taken.ok().map(|_| ViewerSlot {
            connections: self.connections.clone(),
        })
    }

    /// A new viewer of `run`: it first receives the chapter being written
    /// so far, if any.
    pub fn subscribe(&self, run: &RunId) -> (ViewerId, Receiver<LiveEvent>) {
        let (sender, receiver) = sync_channel(VIEWER_BUFFER);
        let id = ViewerId(self.next_viewer.fetch_add(1, Ordering::Relaxed));
        self.with_feed(run, |feed| {
            if let Some((chapter, text)) = &feed.chapter {
                let _ = sender.try_send(LiveEvent::Chunk {
                    chapter: *chapter,
                    text: text.clone(),
                    reset: true,
                });
            }
            feed.viewers.push((id, sender));
        });
        (id, receiver)
    }

    /// The chapter of `run` being written and its text so far, if any.
    pub fn so_far(&self, run: &RunId) -> Option<(u32, String)> {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.get(run).and_then(|feed| feed.chapter.clone())
    }

    /// A viewer of `run` left: it is removed, and so is the run's feed when
    /// nobody else watches and nothing is being written (a run that no
    /// worker of this process holds would otherwise stay in the map).
    pub fn unsubscribe(&self, run: &RunId, viewer: ViewerId) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get_mut(run) {
            feed.viewers.retain(|(id, _)| *id != viewer);
            if feed.viewers.is_empty() && feed.chapter.is_none() {
                feeds.remove(run);
            }
        }
    }

    /// Viewers of `run` right now.
    pub fn viewers(&self, run: &RunId) -> usize {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.get(run).map_or(0, |feed| feed.viewers.len())
    }

    /// An attempt at `chapter` starts over from `base` (empty for a new
    /// chapter, the text so far for a continuation).
    pub fn restart(&self, run: &RunId, chapter: u32, base: &str) {
        self.with_feed(run, |feed| {
            feed.chapter = Some((chapter, base.to_string()));
            feed.send(&LiveEvent::Chunk {
                chapter,
                text: base.to_string(),
                reset: true,
            });
        });
    }

    /// More text of `chapter`.
    pub fn chunk(&self, run: &RunId, chapter: u32, text: &str) {
        if text.is_empty() {
            return;
        }
        self.with_feed(run, |feed| {
            match &mut feed.chapter {
                Some((number, so_far)) if *number == chapter => so_far.push_str(text),
                other => *other = Some((chapter, text.to_string())),
            }
            feed.send(&LiveEvent::Chunk {
                chapter,
                text: text.to_string(),
                reset: false,
            });
        });
    }

    /// `chapter` was saved: its text is no longer in the making.
    pub fn saved(&self, run: &RunId, chapter: u32) {
        self.with_feed(run, |feed| {
            feed.chapter = None;
            feed.send(&LiveEvent::Saved { chapter });
        });
    }

    /// The run's status changed; a finished run's feed is closed (its
    /// viewers get the status, then the end of their channel).
    pub fn status(&self, run: &RunId, status: RunStatus) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let feed = feeds.entry(run.clone()).or_default();
        feed.chapter = None;
        feed.send(&LiveEvent::Status { status });
        if status.is_finished() {
            feeds.remove(run);
        }
    }
}

/// Removes reasoning from text that arrives in pieces.
#[derive(Debug, Default)]
pub struct ThinkFilter {
    /// Text not yet shown or dropped: a tag may start in it.
    pending: String,
    inside: bool,
}

/// What a `<` starts.
#[derive(Debug, PartialEq, Eq)]
enum Tag {
    /// An opening (`closing: false`) or closing think tag of this many bytes.
    Think { closing: bool, len: usize },
    /// Too short to tell yet.
    Partial,
    /// Anything else.
    Other,
}

/// Longest tag looked for (attributes included); past it, a `<` is text.
const MAX_TAG: usize = 64;

fn tag_at(text: &str) -> Tag {
    let lower = text.to_ascii_lowercase();
    let (closing, rest) = match lower.strip_prefix("</") {
        Some(rest) => (true, rest),
        None => (false, &lower[1..]),
    };
    let prefix = lower.len() - rest.len();
    for name in ["thinking", "think"] {
        if let Some(after) = rest.strip_prefix(name) {
            let len = prefix + name.len();
            match after.chars().next() {
                None => return Tag::Partial,
                Some('>') => {
                    return Tag::Think {
                        closing,
                        len: len + 1,
                    };
                }
                Some(c) if c.is_whitespace() => {
                    return match after.find('>') {
                        Some(end) => Tag::Think {
                            closing,
                            len: len + end + 1,
                        },
                        None if lower.len() < MAX_TAG => Tag::Partial,
                        None => Tag::Other,
                    };
                }
                Some(_) => {}
            }
        }
    }
    if "thinking".starts_with(rest) {
        Tag::Partial
    } else {
        Tag::Other
    }
}

impl ThinkFilter {
    /// Takes a piece of raw text; returns what may be shown of it now.
    pub fn push(&mut self, delta: &str) -> String {
        self.pending.push_str(delta);
        let mut shown = String::new();
        loop {
            let Some(at) = self.pending.find('<') else {
                if !self.inside {
                    shown.push_str(&self.pending);
                }
                self.pending.clear();
                return shown;
            };
            if !self.inside {
                shown.push_str(&self.pending[..at]);
            }
            self.pending.drain(..at);
            match tag_at(&self.pending) {
                Tag::Partial => return shown,
                Tag::Think { closing, len } => {
                    // A closing tag with no opening one is dropped: what
                    // came before was shown already.
                    self.inside = !closing;
                    self.pending.drain(..len);
                }
                Tag::Other => {
                    if !self.inside {
                        shown.push('<');
                    }
                    self.pending.drain(..1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(pieces: &[&str]) -> String {
        let mut filter = ThinkFilter::default();
        pieces.iter().map(|piece| filter.push(piece)).collect()
    }

    #[test]
    fn reasoning_never_shows_wherever_the_pieces_split() {
        let text = "Dawn. <think>plan the scene</think>The gate <b>opened</b>. <THINKING mode=\"x\">more</Thinking> End <3";
        let expected = "Dawn. The gate <b>opened</b>.  End <3";
        assert_eq!(filtered(&[text]), expected);
        let chars: Vec<char> = text.chars().collect();
        for size in 1..8 {
            let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
            let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let shown = filtered(&pieces);
            assert_eq!(shown, expected, "pieces of {size}");
        }
    }

    #[test]
    fn an_unclosed_think_hides_the_rest() {
        assert_eq!(filtered(&["Start <thi", "nk>secret", " plans"]), "Start ");
    }

    #[test]
    fn a_full_viewer_is_dropped_and_never_blocks() {
        let hub = LiveHub::default();
        let run = RunId::random();
        let (_, slow) = hub.subscribe(&run);
        let (_, reader) = hub.subscribe(&run);
        for n in 0..VIEWER_BUFFER + 10 {
            hub.chunk(&run, 1, &format!("{n} "));
            while reader.try_recv().is_ok() {}
        }
        assert_eq!(hub.viewers(&run), 1, "the viewer that never read is gone");
        drop(slow);
        let (_, late) = hub.subscribe(&run);
        match late.try_recv() {
            Ok(LiveEvent::Chunk {
                chapter: 1,
                text,
                reset: true,
            }) => assert!(text.starts_with("0 1 2 "), "{text}"),
            other => panic!("{other:?}"),
        }
        hub.saved(&run, 1);
        hub.status(&run, RunStatus::Completed);
        assert_eq!(late.recv(), Ok(LiveEvent::Saved { chapter: 1 }));
        assert_eq!(
            late.recv(),
            Ok(LiveEvent::Status {
                status: RunStatus::Completed
            })
        );
        assert!(late.recv().is_err(), "a finished run's feed is closed");
    }

    #[test]
    fn a_run_nobody_watches_or_writes_is_forgotten() {
        let hub = LiveHub::default();
        let run = RunId::random();
        let (first, _a) = hub.subscribe(&run);
        let (second, _b) = hub.subscribe(&run);
        hub.unsubscribe(&run, first);
        assert_eq!(hub.viewers(&run), 1);
        hub.unsubscribe(&run, second);
        assert_eq!(hub.viewers(&run), 0);
        assert!(hub.feeds.lock().unwrap().is_empty());
    }

    #[test]
    fn live_connections_are_bounded() {
        let hub = LiveHub::default();
        let slots: Vec<_> = (0..MAX_VIEWERS).map_while(|_| hub.take_slot()).collect();
        assert_eq!(slots.len(), MAX_VIEWERS);
        assert!(hub.take_slot().is_none());
        drop(slots);
        assert!(hub.take_slot().is_some());
    }

    #[test]
    fn events_are_written_as_the_contract_names_them() {
        let chunk = LiveEvent::Chunk {
            chapter: 2,
            text: "a\nb".into(),
            reset: false,
        };
        assert_eq!(
            chunk.to_sse(),
            "event: chunk\ndata: {\"chapter\":2,\"text\":\"a\\nb\"}\n\n"
        );
        assert_eq!(
            LiveEvent::Status {
                status: RunStatus::Running
            }
            .to_sse(),
            "event: status\ndata: {\"status\":\"running\"}\n\n"
        );
    }
}
