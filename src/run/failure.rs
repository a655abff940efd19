//! Why a run failed: the codes, which of them a retry may cure, and what a
//! writer does about each.

use super::RunId;

closed_vocabulary! {
    /// Every code a run can fail with (`workflow_runs.error_code`). A code
    /// this build does not know (written by another version) reads back as
    /// `Unknown`.
    pub enum FailureCode ("failure code") fallback Unknown {
        /// The run's story was deleted under it (seen by its worker).
        StoryNotFound = "STORY_NOT_FOUND",
        /// The run's story does not exist (seen by the sweep).
        OrphanedRun = "ORPHANED_RUN",
        /// Claimed `--max-attempts` times without finishing: its workers kept dying.
        StuckTimeout = "STUCK_TIMEOUT",
        /// A write failed for want of disk space and the worker gave up.
        DatabaseFull = "DATABASE_FULL",
        /// Any other database failure during the run.
        DatabaseError = "DATABASE_ERROR",
        /// 401/403 from the LLM server: the API key is missing or wrong.
        GeneratorAuth = "GENERATOR_AUTH",
        /// 404 from the LLM server: wrong URL or unknown model.
        GeneratorNotFound = "GENERATOR_NOT_FOUND",
        /// An answer that is not what the protocol promises, or empty text.
        GeneratorBadResponse = "GENERATOR_BAD_RESPONSE",
        /// Other 4xx answers and configuration problems.
        GeneratorRejected = "GENERATOR_REJECTED",
        /// Transient failures that outlasted every retry.
        GeneratorUnavailable = "GENERATOR_UNAVAILABLE",
        /// The server's content filter refused to write the piece.
        GeneratorFiltered = "GENERATOR_FILTERED",
        /// A chapter still cut off after every continuation.
        ChapterTruncated = "CHAPTER_TRUNCATED",
        /// The fixed part of a prompt alone exceeds the context budget.
        ContextBudget = "CONTEXT_BUDGET",
        /// A rewrite run for a chapter that is not there.
        ChapterNotFound = "CHAPTER_NOT_FOUND",
        /// The chapter a rewrite run was to replace was locked meanwhile.
        ChapterLocked = "CHAPTER_LOCKED",
        /// A generated outline that could not be made to name every chapter
        /// asked, in order, within `--max-continuations` follow-up requests.
        OutlineIncomplete = "OUTLINE_INCOMPLETE",
        Unknown = "UNKNOWN",
    }
}

impl FailureCode {
    /// Whether a run that failed with this code may well succeed when
    /// retried unchanged: the cause passes by itself (a server down, a full
    /// disk, a dying worker) or a retry continues where it stopped.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            FailureCode::GeneratorUnavailable
                | FailureCode::StuckTimeout
                | FailureCode::DatabaseError
                | FailureCode::DatabaseFull
                | FailureCode::ChapterTruncated
        )
    }

    /// What a writer does about a run of theirs that failed with this code
    /// and that a retry alone will not cure.
    pub fn advice(self, run: &RunId) -> String {
        match self {
            FailureCode::GeneratorAuth => {
                format!("check STORYFLOW_LLM_API_KEY, then `storyflow run retry {run}`")
            }
            FailureCode::GeneratorNotFound => {
                format!("check --llm-url and --llm-model, then `storyflow run retry {run}`")
            }
            FailureCode::StoryNotFound | FailureCode::OrphanedRun => {
                "storyflow fix-orphans --dry-run".into()
            }
            _ => format!(
                "read the run's events with `storyflow diagnose --run {run} --verbose`, fix the cause, then `storyflow run retry {run}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_what_they_write() {
        for code in FailureCode::ALL {
            assert_eq!(FailureCode::from_text(code.as_str()), Ok(*code));
        }
        assert_eq!(
            FailureCode::from_text("SOMETHING_NEW"),
            Ok(FailureCode::Unknown)
        );
    }

    #[test]
    fn passing_causes_are_retriable_and_bad_configuration_is_not() {
        assert!(FailureCode::GeneratorUnavailable.is_retriable());
        assert!(FailureCode::StuckTimeout.is_retriable());
        assert!(!FailureCode::GeneratorAuth.is_retriable());
        assert!(!FailureCode::GeneratorFiltered.is_retriable());
        assert!(!FailureCode::OrphanedRun.is_retriable());
    }

    #[test]
    fn advice_names_the_run_and_the_setting_to_check() {
        let run = RunId::parse("3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60").unwrap();
        let advice = FailureCode::GeneratorAuth.advice(&run);
        assert_eq!(
            advice,
            "check STORYFLOW_LLM_API_KEY, then `storyflow run retry 3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60`"
        );
        assert_eq!(
            FailureCode::OrphanedRun.advice(&run),
            "storyflow fix-orphans --dry-run"
        );
    }
}
