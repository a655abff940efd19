//! Where a run is in its life, and what its timeline records.

closed_vocabulary! {
    /// A run's status. Only these five are ever stored (the schema checks).
    pub enum RunStatus ("run status") {
        Pending = "pending",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    /// Pending or running: a worker holds it or will.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }

    /// Failed or cancelled runs may be retried; they resume where they stopped.
    pub fn is_retriable(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::Cancelled)
    }

    /// Completed, failed or cancelled: nothing more happens to it unless retried.
    pub fn is_finished(self) -> bool {
        !self.is_active()
    }
}

closed_vocabulary! {
    /// The kind of an entry in a run's timeline (`run_events.kind`). An
    /// entry of a kind this build does not know (written by another
    /// version) reads back as `Unknown`.
    pub enum EventKind ("run event kind") fallback Unknown {
        /// The run was queued.
        Created = "created",
        /// A worker took the lease.
        Claimed = "claimed",
        /// Taken over from a worker whose lease expired, or re-queued by a sweep.
        Recovered = "recovered",
        /// The run entered a [`Step`](super::Step).
        Step = "step",
        /// A prompt was rendered: its size estimate, and what was trimmed.
        Prompt = "prompt",
        /// The outline was written.
        Outline = "outline",
        /// A chapter was saved or rewritten.
        Chapter = "chapter",
        /// A cut-off chapter was continued.
        Continued = "continued",
        /// A chapter repeated itself past `--rewrite-repetitive` and was
        /// written once more; the message gives both repetition shares and
        /// which text was kept.
        Rewritten = "rewritten",
        /// The model server read far fewer prompt tokens than were sent: it
        /// cut the prompt (as Ollama does past its `num_ctx`).
        PromptTruncated = "prompt_truncated",
        /// An earlier chapter without a summary was given one.
        Summary = "summary",
        /// A transient generator failure will be tried again; or the user
        /// asked for a failed run to be retried.
        Retry = "retry",
        /// Handed back to the queue at shutdown.
        Released = "released",
        /// Cancelled by the user.
        Cancelled = "cancelled",
        /// A worker stopped on a run that left its hands (cancelled,
        /// deleted, taken over) and moved on.
        Stopped = "stopped",
        Completed = "completed",
        Failed = "failed",
        Unknown = "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_what_they_write_and_refuse_the_rest() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::from_text(status.as_str()), Ok(*status));
        }
        let err = RunStatus::from_text("bogus").unwrap_err();
        assert_eq!(
            err,
            "`bogus` is not a run status (pending, running, completed, failed, cancelled)"
        );
    }

    #[test]
    fn an_event_kind_from_another_version_reads_as_unknown() {
        assert_eq!(EventKind::from_text("chapter"), Ok(EventKind::Chapter));
        assert_eq!(EventKind::from_text("teleported"), Ok(EventKind::Unknown));
    }
}
