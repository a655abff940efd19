//! What each generator call cost: one `generations` row per call, answered
//! or failed, with its latency, added to the run's and story's totals and to
//! the process's Prometheus counters; and the check that the server read the
//! prompt it was sent.
//!
//! Decisions:
//! - a failed call has no server figures (backends report usage only with
//!   an answer): its prompt is counted as estimated and its completion as 0;
//! - the builtin generator renders no prompt, so its prompt tokens are 0;
//! - recording is best effort: a row that cannot be written (a full disk) is
//!   logged and skipped, so accounting never holds up or fails a run;
//! - `prompt_truncated` is recorded once per run in a worker's hands, for
//!   the first call whose server read under [`TRUNCATION_RATIO`] of the
//!   estimate: one warning says it all, the totals show the rest;
//! - time to first token is measured by a streaming backend
//!   (`CallReport::first_token`) and stored as `first_token_ms`; calls that
//!   streamed nothing leave it NULL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::worker::Job;
use crate::generator::prompts::estimate_tokens;
use crate::generator::{Completion, GenError, Task, TaskKind};
use crate::metrics::Metrics;
use crate::run::EventKind;
use crate::store::{GenerationKind, NewGeneration};

/// A server that read less than this share of the estimated prompt cut it.
/// Estimates err high (3.5 characters per token against about 4 in English),
/// so a whole prompt reads as 85-115 % of the estimate; 75 % leaves room.
pub(super) const TRUNCATION_RATIO: f64 = 0.75;

impl Job<'_> {
    /// Records one call: `result` is what [`crate::generator::ask`] gave,
    /// after `latency`.
    pub(super) fn account(
        &self,
        task: &Task<'_>,
        result: &Result<Completion, GenError>,
        latency: Duration,
    ) {
        let call = self.generation_row(task, result, latency);
        let metrics = &self.shared.app.metrics;
        Metrics::inc(&metrics.generator_calls);
        Metrics::add(&metrics.tokens_prompt, u64::from(call.prompt_tokens()));
        Metrics::add(
            &metrics.tokens_completion,
            u64::from(call.completion_tokens),
        );
        if let Err(e) = self.shared.app.store.record_generation(&call) {
            log::warn!(
                "run {}: could not record a generator call ({e}); its tokens are missing from the totals",
                self.run.id
            );
        }
        self.check_prompt_read(&call);
    }

    fn generation_row(
        &self,
        task: &Task<'_>,
        result: &Result<Completion, GenError>,
        latency: Duration,
    ) -> NewGeneration {
        let prompt_tokens_estimated =
            estimate_tokens(&task.prompt.system) + estimate_tokens(&task.prompt.user);
        let (report, outcome) = match result {
            Ok(completion) => (Some(&completion.call), "ok".to_string()),
            Err(error) => (None, outcome_of(error)),
        };
        let usage = report.and_then(|r| r.usage);
        NewGeneration {
            run_id: self.run.id.clone(),
            story_id: self.run.story_id.clone(),
            chapter: task.kind.chapter().map(|c| c.number),
            kind: kind_of(&task.kind),
            model: self
                .shared
                .generator
                .current()
                .model_for(&task.kind)
                .to_string(),
            prompt_tokens_estimated,
            prompt_tokens_reported: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map_or_else(
                || report.map_or(0, |r| r.estimated_completion_tokens),
                |u| u.completion_tokens,
            ),
            completion_tokens_estimated: usage.is_none(),
            latency_ms: millis(latency),
            first_token_ms: report.and_then(|r| r.first_token).map(millis),
            finish_reason: report.and_then(|r| r.finish_reason.clone()),
            outcome,
        }
    }

    /// Records `prompt_truncated` the first time the server read far fewer
    /// prompt tokens than were sent.
    fn check_prompt_read(&self, call: &NewGeneration) {
        let Some(read) = call.prompt_tokens_reported else {
            return;
        };
        let sent = call.prompt_tokens_estimated;
        if !prompt_was_cut(sent, read) || self.truncation_reported.swap(true, Ordering::Relaxed) {
            return;
        }
        let what = match call.chapter {
            Some(n) => format!("the {} prompt of chapter {n}", call.kind.as_str()),
            None => format!("the {} prompt", call.kind.as_str()),
        };
        let note = format!(
            "the model server read {read} tokens of {what}, about {sent} were sent: it cut the prompt, so the model did not see the whole story so far. Ollama cuts prompts past its context window (num_ctx, 2048 or 4096 by default): start storyflow with --llm-extra-body '{{\"options\": {{\"num_ctx\": 16384}}}}' or set a larger num_ctx in the Modelfile (PARAMETER num_ctx 16384); other servers: raise their context size, or lower --llm-context-tokens to what the server takes"
        );
        log::warn!("run {}: {note}", self.run.id);
        if let Err(e) =
            self.shared
                .app
                .store
                .add_event(&self.run.id, EventKind::PromptTruncated, &note)
        {
            log::warn!(
                "could not record prompt_truncated for run {}: {e}",
                self.run.id
            );
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Whether a server that read `read` tokens of a prompt estimated at `sent`
/// cut it.
pub(super) fn prompt_was_cut(sent: u32, read: u32) -> bool {
    sent > 0 && f64::from(read) < f64::from(sent) * TRUNCATION_RATIO
}

fn kind_of(kind: &TaskKind<'_>) -> GenerationKind {
    match kind {
        TaskKind::Outline { .. } => GenerationKind::Outline,
        TaskKind::Chapter(_) => GenerationKind::Chapter,
        TaskKind::Continue { .. } => GenerationKind::Continuation,
        TaskKind::Summary { .. } => GenerationKind::Summary,
    }
}

/// The error kind a failed call is recorded with.
fn outcome_of(error: &GenError) -> String {
    match error {
        GenError::Transient { .. } => "transient".into(),
        GenError::BadAnswer { .. } => "bad_answer".into(),
        GenError::Cancelled => "cancelled".into(),
        GenError::Permanent { code, .. } => code.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::prompt_was_cut;

    #[test]
    fn a_prompt_read_under_three_quarters_of_the_estimate_was_cut() {
        assert!(prompt_was_cut(1000, 300));
        assert!(prompt_was_cut(1000, 749));
        assert!(!prompt_was_cut(1000, 750));
        assert!(!prompt_was_cut(1000, 1200));
        assert!(!prompt_was_cut(0, 0));
    }
}
