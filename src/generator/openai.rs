//! OpenAI-compatible chat completions (being written; see issue 3).

use std::time::Duration;

use super::{ChapterRequest, GenError, Generator, StoryContext, codes};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL, such as `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

pub struct OpenAi {
    config: OpenAiConfig,
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Result<OpenAi, String> {
        Ok(OpenAi { config })
    }
}

impl Generator for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn outline(&self, _story: &StoryContext, _chapters: u32) -> Result<String, GenError> {
        Err(GenError::permanent(
            codes::REJECTED,
            format!("openai backend for {} not built yet", self.config.base_url),
        ))
    }

    fn chapter(
        &self,
        _story: &StoryContext,
        _chapter: &ChapterRequest,
    ) -> Result<String, GenError> {
        Err(GenError::permanent(
            codes::REJECTED,
            format!("openai backend for {} not built yet", self.config.base_url),
        ))
    }
}
