//! A local command as generator (being written; see issue 3).

use std::time::Duration;

use super::{ChapterRequest, GenError, Generator, StoryContext, codes};

pub struct CommandGenerator {
    program: String,
    #[allow(dead_code)]
    timeout: Duration,
}

impl CommandGenerator {
    pub fn new(command_line: &str, timeout: Duration) -> Result<CommandGenerator, String> {
        Ok(CommandGenerator {
            program: command_line.to_string(),
            timeout,
        })
    }
}

impl Generator for CommandGenerator {
    fn name(&self) -> &'static str {
        "command"
    }

    fn outline(&self, _story: &StoryContext, _chapters: u32) -> Result<String, GenError> {
        Err(GenError::permanent(
            codes::REJECTED,
            format!("command backend `{}` not built yet", self.program),
        ))
    }

    fn chapter(
        &self,
        _story: &StoryContext,
        _chapter: &ChapterRequest,
    ) -> Result<String, GenError> {
        Err(GenError::permanent(
            codes::REJECTED,
            format!("command backend `{}` not built yet", self.program),
        ))
    }
}
