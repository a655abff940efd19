//! Text generators: what writes outlines and chapters.
//!
//! [`Generator`] is the one interface the engine calls. Three backends
//! implement it: [`builtin`] (offline, deterministic), [`openai`] (any
//! OpenAI-compatible chat completions server) and [`command`] (a local
//! program: prompt on stdin, text on stdout). A backend reports failures as
//! [`GenError`]: transient ones the engine retries with backoff, permanent
//! ones that fail the run with their code. Backends never retry themselves.
//!
//! A backend returns its answer raw ([`RawCompletion`]); [`ask`] is the one
//! way to call a generator, and it passes every answer, of every kind of
//! piece, through [`clean`], which removes reasoning and judges the answer
//! (whole, cut, filtered, empty, bad). A backend never cleans by itself.
//!
//! A call may carry a [`LiveSink`]: a backend that streams pushes each piece
//! of text into it as it arrives (raw, reasoning included: the sink filters
//! what it shows). What is saved is still only what [`ask`] returns.
//!
//! Every call carries a [`CancelToken`]: a backend sends nothing when it is
//! already cancelled and abandons a call in flight within 2 seconds of its
//! cancellation, returning [`GenError::Cancelled`].

pub mod builtin;
pub mod clean;
pub mod command;
pub mod openai;
pub mod prompts;

use std::time::Duration;

use crate::cancel::CancelToken;
use crate::run::FailureCode;
use crate::store::{BibleEntry, DEFAULT_LANGUAGE, DEFAULT_TARGET_WORDS, Story, StoryId};

pub use clean::{Cleaned, RawCompletion, Usage, Verdict};
pub use prompts::{BuiltPrompt, Prompt, PromptBuilder, Templates};

/// What a generator knows of the story it writes.
#[derive(Debug, Clone)]
pub struct StoryContext {
    pub story_id: StoryId,
    pub title: String,
    pub premise: String,
    pub outline: String,
    /// The chapters written so far, in order: their summaries, not their text.
    pub previous: Vec<ChapterGist>,
    /// The end of the chapter before the one to write.
    pub previous_tail: String,
    /// How the writer wants it written.
    pub brief: StoryBrief,
    /// The story bible, in its own order; the prompts choose from it.
    pub bible: Vec<BibleEntry>,
}

/// How the writer wants the book written: the story fields every prompt
/// carries (placeholders `{author}`, `{language}`, `{pov}`, `{tense}`,
/// `{style}`, `{target_words}`). Empty `pov`, `tense` and `style` leave the
/// choice to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryBrief {
    pub author: String,
    /// A language name (`French`), as the writer gave it.
    pub language: String,
    pub pov: String,
    pub tense: String,
    /// Free notes on tone and voice.
    pub style: String,
    /// Words asked of each chapter.
    pub target_words: u32,
}

impl Default for StoryBrief {
    fn default() -> StoryBrief {
        StoryBrief {
            author: String::new(),
            language: DEFAULT_LANGUAGE.to_string(),
            pov: String::new(),
            tense: String::new(),
            style: String::new(),
            target_words: DEFAULT_TARGET_WORDS,
        }
    }
}

impl From<&Story> for StoryBrief {
    fn from(story: &Story) -> StoryBrief {
        StoryBrief {
            author: story.author.clone(),
            language: story.language.clone(),
            pov: story.pov.clone(),
            tense: story.tense.clone(),
            style: story.style.clone(),
            target_words: story.target_words,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChapterGist {
    pub number: u32,
    pub title: String,
    /// The generator's summary of the chapter.
    pub summary: String,
}

/// The chapter to write.
#[derive(Debug, Clone)]
pub struct ChapterRequest {
    pub number: u32,
    pub total: u32,
    pub title: String,
}

/// One request to a generator. The engine renders the prompt (templates,
/// context budget); backends that speak prompts send it, and the builtin
/// backend reads the structured fields instead.
#[derive(Debug, Clone)]
pub struct Task<'a> {
    pub story: &'a StoryContext,
    pub kind: TaskKind<'a>,
    pub prompt: Prompt,
    /// Tokens the answer may take (`max_tokens` of a chat completion).
    pub max_tokens: u32,
    /// Cancelled when the answer is no longer wanted (the run's cancel,
    /// shutdown): the backend then stops waiting for it.
    pub cancel: &'a CancelToken,
    /// Where a streaming backend pushes text as it arrives; `None` when
    /// nobody watches this piece (outlines, summaries).
    pub live: Option<&'a dyn LiveSink>,
}

/// Receives an answer's text while it is being written. Called on the
/// calling thread; must return at once (it never waits for a viewer).
pub trait LiveSink: Sync + std::fmt::Debug {
    /// A new attempt of the call begins: what an earlier attempt pushed is
    /// void.
    fn begin(&self);
    /// A piece of raw text, in order.
    fn push(&self, delta: &str);
}

#[derive(Debug, Clone, Copy)]
pub enum TaskKind<'a> {
    /// An outline of this many chapters, one `## Chapter N: Title` each.
    Outline { chapters: u32 },
    /// The text of a chapter, without its heading.
    Chapter(&'a ChapterRequest),
    /// More of a chapter that was cut off after `so_far`.
    Continue {
        chapter: &'a ChapterRequest,
        so_far: &'a str,
    },
    /// Two or three sentences on what happens in `text`.
    Summary {
        chapter: &'a ChapterRequest,
        text: &'a str,
    },
}

impl TaskKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Outline { .. } => "outline",
            TaskKind::Chapter(_) => "chapter",
            TaskKind::Continue { .. } => "continue",
            TaskKind::Summary { .. } => "summary",
        }
    }

    /// The chapter it concerns, if any.
    pub fn chapter(&self) -> Option<&ChapterRequest> {
        match *self {
            TaskKind::Outline { .. } => None,
            TaskKind::Chapter(chapter)
            | TaskKind::Continue { chapter, .. }
            | TaskKind::Summary { chapter, .. } => Some(chapter),
        }
    }
}

/// A generator's answer once cleaned: text worth saving, whole or cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    /// The backend knows the text was cut off by its length limit.
    pub truncated: bool,
    /// What the call cost, as [`ask`] measured it; default until then.
    pub call: CallReport,
}

impl Completion {
    pub fn finished(text: impl Into<String>) -> Completion {
        Completion {
            text: text.into(),
            truncated: false,
            call: CallReport::default(),
        }
    }

    /// Text cut off by the length limit.
    pub fn cut(text: impl Into<String>) -> Completion {
        Completion {
            truncated: true,
            ..Completion::finished(text)
        }
    }
}

/// What one answered call cost, for the run's accounting: the server's
/// token counts when it reported them, and the estimate of what it wrote
/// (from the raw answer, reasoning included: the model wrote it too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallReport {
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub estimated_completion_tokens: u32,
    /// How long the first text took, when the backend streamed.
    pub first_token: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenError {
    /// Worth trying again: timeouts, refused connections, HTTP 429/5xx, a
    /// command that exited non-zero.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help: bad credentials, wrong URL or model,
    /// malformed answers, bad configuration.
    #[error("{message}")]
    Permanent { code: FailureCode, message: String },
    /// The answer arrived but holds nothing to save (no text once reasoning
    /// is removed): asking again may help. Retried as transient failures
    /// are; once retries are spent the run fails `GENERATOR_BAD_RESPONSE`.
    #[error("{message}")]
    BadAnswer { message: String },
    /// The call was abandoned because its [`Task::cancel`] token was
    /// cancelled; nothing was or will be used of it.
    #[error("the generator call was cancelled")]
    Cancelled,
}

impl GenError {
    pub fn transient(message: impl Into<String>) -> GenError {
        GenError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(code: FailureCode, message: impl Into<String>) -> GenError {
        GenError::Permanent {
            code,
            message: message.into(),
        }
    }
}

pub trait Generator: Send + Sync {
    /// Short name for logs and `/api/health`.
    fn name(&self) -> &'static str;

    /// The model a call's accounting names: the server's model, or the
    /// backend's name for backends without one.
    fn model(&self) -> &str {
        self.name()
    }

    /// The model a call of this kind goes to (backends with a model per
    /// kind of piece say which).
    fn model_for(&self, _kind: &TaskKind<'_>) -> &str {
        self.model()
    }

    /// Whether [`Generator::generate`] reads [`Task::prompt`]; the engine
    /// renders prompts only for backends that do.
    fn reads_prompts(&self) -> bool {
        true
    }

    /// Whether a [`Completion`] says when it was cut off. For backends that
    /// cannot tell, the engine takes a chapter below a minimum length as cut
    /// off.
    fn reports_truncation(&self) -> bool {
        false
    }

    /// Asks once and returns the answer as received, uncleaned. Callers use
    /// [`ask`], which cleans it.
    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError>;
}

/// Asks `generator` once and cleans its answer: the only way the engine
/// calls a generator. Sends nothing when the task is already cancelled.
pub fn ask(generator: &dyn Generator, task: &Task<'_>) -> Result<Completion, GenError> {
    if task.cancel.is_cancelled() {
        return Err(GenError::Cancelled);
    }
    if let Some(live) = task.live {
        live.begin();
    }
    let raw = generator.generate(task)?;
    let call = CallReport {
        finish_reason: raw.finish_reason.clone(),
        usage: raw.usage,
        first_token: raw.first_token,
        estimated_completion_tokens: prompts::estimate_tokens(&String::from_utf8_lossy(
            &raw.content,
        )),
    };
    let mut completion = clean::clean(raw).into_completion(&task.kind)?;
    completion.call = call;
    Ok(completion)
}
