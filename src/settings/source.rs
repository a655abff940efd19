//! [`GeneratorSource`]: the generator the workers call, swapped in place
//! when the settings change. A worker takes the current generator before
//! each call ([`GeneratorSource::current`]), so a change applies to the
//! next call without a restart, and a call in flight finishes with the
//! generator it began with (it holds its own `Arc`).
//!
//! [`ByTask`] lets the outline and the summaries use models of their own on
//! the same server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::generator::GenError;
use crate::generator::openai::OpenAi;
use crate::generator::{Generator, PromptBuilder, RawCompletion, Task, TaskKind};
use crate::store::Prices;

/// What a settings change replaces at once.
#[derive(Clone)]
pub struct Current {
    pub generator: Arc<dyn Generator>,
    /// Prompts fitted to the context window in force.
    pub prompts: Arc<PromptBuilder>,
    /// What tokens cost, for the run accounting.
    pub prices: Prices,
}

pub struct GeneratorSource {
    current: RwLock<Current>,
    /// Counts the swaps: which settings a call or a check was made with.
    generation: AtomicU64,
}

impl GeneratorSource {
    pub fn new(current: Current) -> GeneratorSource {
        GeneratorSource {
            current: RwLock::new(current),
            generation: AtomicU64::new(0),
        }
    }

    /// A source that is never swapped (engine tests, one-off commands).
    pub fn fixed(generator: Arc<dyn Generator>, prompts: Arc<PromptBuilder>) -> GeneratorSource {
        GeneratorSource::new(Current {
            generator,
            prompts,
            prices: Prices::default(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A panic while swapping left a whole `Current` behind: use it.
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Current {
        self.read().clone()
    }

    /// The generator for the next call.
    pub fn current(&self) -> Arc<dyn Generator> {
        self.read().generator.clone()
    }

    pub fn prompts(&self) -> Arc<PromptBuilder> {
        self.read().prompts.clone()
    }

    pub fn prices(&self) -> Prices {
        self.read().prices
    }

    pub fn reads_prompts(&self) -> bool {
        self.read().generator.reads_prompts()
    }

    /// The main model's name, as the accounting records it.
    pub fn model(&self) -> String {
        self.read().generator.model().to_string()
    }

    pub fn name(&self) -> &'static str {
        self.read().generator.name()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Puts `next` in force for every call from now on.
    pub fn swap(&self, next: Current) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = next;
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// One server, up to three models: the outline's, the summaries', and the
/// chapters' (the main one, which continuations use too).
pub struct ByTask {
    pub chapters: OpenAi,
    pub outline: Option<OpenAi>,
    pub summary: Option<OpenAi>,
}

impl ByTask {
    fn for_kind(&self, kind: &TaskKind<'_>) -> &OpenAi {
        let own = match kind {
            TaskKind::Outline { .. } => self.outline.as_ref(),
            TaskKind::Summary { .. } => self.summary.as_ref(),
            TaskKind::Chapter(_) | TaskKind::Continue { .. } => None,
        };
        own.unwrap_or(&self.chapters)
    }
}

impl Generator for ByTask {
    fn name(&self) -> &'static str {
        self.chapters.name()
    }

    fn model(&self) -> &str {
        self.chapters.model()
    }

    fn model_for(&self, kind: &TaskKind<'_>) -> &str {
        self.for_kind(kind).model()
    }

    fn reports_truncation(&self) -> bool {
        self.chapters.reports_truncation()
    }

    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        self.for_kind(&task.kind).generate(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::builtin::Builtin;
    use crate::generator::openai::OpenAiConfig;
    use crate::generator::{ChapterRequest, Templates};

    fn openai(model: &str) -> OpenAi {
        OpenAi::new(OpenAiConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: model.into(),
            api_key: None,
            timeout: std::time::Duration::from_secs(1),
            extra_body: serde_json::Map::new(),
        })
        .expect("a valid config")
    }

    #[test]
    fn a_swap_is_what_the_next_caller_gets() {
        let prompts = Arc::new(PromptBuilder::new(
            Templates::load(None).expect("built-in templates"),
            8192,
        ));
        let source = GeneratorSource::fixed(
            Arc::new(Builtin {
                delay: std::time::Duration::ZERO,
            }),
            prompts.clone(),
        );
        let before = source.current();
        assert_eq!(source.name(), "builtin");
        source.swap(Current {
            generator: Arc::new(openai("after")),
            prompts: Arc::new(prompts.with_context_tokens(4096)),
            prices: Prices {
                input_per_mtok: Some(1.0),
                output_per_mtok: None,
            },
        });
        assert_eq!(source.generation(), 1);
        assert_eq!(source.model(), "after");
        assert_eq!(source.prompts().context_tokens(), 4096);
        assert_eq!(source.prices().input_per_mtok, Some(1.0));
        // A call begun before the swap keeps its generator.
        assert_eq!(before.name(), "builtin");
    }

    #[test]
    fn each_kind_of_piece_goes_to_its_own_model() {
        let by_task = ByTask {
            chapters: openai("main"),
            outline: Some(openai("planner")),
            summary: None,
        };
        let chapter = ChapterRequest {
            number: 1,
            total: 2,
            title: "One".into(),
        };
        assert_eq!(
            by_task.model_for(&TaskKind::Outline { chapters: 2 }),
            "planner"
        );
        assert_eq!(by_task.model_for(&TaskKind::Chapter(&chapter)), "main");
        let summary = TaskKind::Summary {
            chapter: &chapter,
            text: "x",
        };
        assert_eq!(by_task.model_for(&summary), "main");
        assert_eq!(by_task.model(), "main");
    }
}
