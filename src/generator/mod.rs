//! Text generators: what writes outlines and chapters.
//!
//! [`Generator`] is the one interface the engine calls. Three backends
//! implement it: [`builtin`] (offline, deterministic), [`openai`] (any
//! OpenAI-compatible chat completions server) and [`command`] (a local
//! program: prompt on stdin, text on stdout). A backend reports failures as
//! [`GenError`]: transient ones the engine retries with backoff, permanent
//! ones that fail the run with their code. Backends never retry themselves.

pub mod builtin;
pub mod command;
pub mod openai;
pub mod prompts;

use std::time::Duration;

use crate::store::StoryId;

/// What a generator knows of the story it writes.
#[derive(Debug, Clone)]
pub struct StoryContext {
    pub story_id: StoryId,
    pub title: String,
    pub premise: String,
    pub outline: String,
    /// The chapters written so far, in order: their gist, not their text.
    pub previous: Vec<ChapterGist>,
}

#[derive(Debug, Clone)]
pub struct ChapterGist {
    pub number: u32,
    pub title: String,
    /// A short account of the chapter (its opening words for now).
    pub gist: String,
}

/// The chapter to write.
#[derive(Debug, Clone)]
pub struct ChapterRequest {
    pub number: u32,
    pub total: u32,
    pub title: String,
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
    Permanent { code: &'static str, message: String },
}

impl GenError {
    pub fn transient(message: impl Into<String>) -> GenError {
        GenError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(code: &'static str, message: impl Into<String>) -> GenError {
        GenError::Permanent {
            code,
            message: message.into(),
        }
    }
}

/// Error codes a run can fail with because of its generator.
pub mod codes {
    /// 401/403 from the LLM server: the API key is missing or wrong.
    pub const AUTH: &str = "GENERATOR_AUTH";
    /// 404 from the LLM server: wrong URL or unknown model.
    pub const NOT_FOUND: &str = "GENERATOR_NOT_FOUND";
    /// An answer that is not what the protocol promises, or empty text.
    pub const BAD_RESPONSE: &str = "GENERATOR_BAD_RESPONSE";
    /// Other 4xx answers and configuration problems.
    pub const REJECTED: &str = "GENERATOR_REJECTED";
    /// Transient failures that outlasted every retry.
    pub const UNAVAILABLE: &str = "GENERATOR_UNAVAILABLE";
}

pub trait Generator: Send + Sync {
    /// Short name for logs and `/api/health`.
    fn name(&self) -> &'static str;

    /// An outline of `chapters` chapters, one `## Chapter N: Title` heading each.
    fn outline(&self, story: &StoryContext, chapters: u32) -> Result<String, GenError>;

    /// The text of one chapter, without its heading.
    fn chapter(&self, story: &StoryContext, chapter: &ChapterRequest) -> Result<String, GenError>;
}
