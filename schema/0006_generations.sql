-- storyflow schema: what every generator call cost.
--
-- One row per generator call, answered or failed, written in its own
-- transaction together with the running totals on the run and the story
-- rows, so reading a run's or a story's usage is one row, and the progress
-- hot path (one UPDATE of workflow_runs) never touches them.
--
-- Neither `run_id` nor `story_id` is a foreign key (as `chapters.run_id` is
-- not): this is an accounting log. A run removed by a clean-up keeps its
-- calls, so a chapter's usage stays what it cost; the rows of a story purged
-- for good hold no text (counts, model, outcome) and stay as the record of
-- what was spent. No foreign key also keeps the health check's orphan scan
-- off this table.

CREATE TABLE generations (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id                      TEXT NOT NULL,
    story_id                    TEXT NOT NULL,
    -- NULL for the outline: it belongs to no chapter.
    chapter                     INTEGER CHECK (chapter IS NULL OR chapter >= 1),
    kind                        TEXT NOT NULL
                                CHECK (kind IN ('outline', 'chapter', 'continuation', 'summary')),
    model                       TEXT NOT NULL,
    -- What storyflow sent, estimated at 3.5 characters per token.
    prompt_tokens_estimated     INTEGER NOT NULL CHECK (prompt_tokens_estimated >= 0),
    -- What the server said it read; NULL when it reported no usage.
    prompt_tokens_reported      INTEGER CHECK (prompt_tokens_reported IS NULL OR prompt_tokens_reported >= 0),
    -- The server's count, else the estimate (then the flag is 1).
    completion_tokens           INTEGER NOT NULL CHECK (completion_tokens >= 0),
    completion_tokens_estimated INTEGER NOT NULL CHECK (completion_tokens_estimated IN (0, 1)),
    latency_ms                  INTEGER NOT NULL CHECK (latency_ms >= 0),
    finish_reason               TEXT,
    -- `ok`, or the error kind: `transient`, `bad_answer`, `cancelled` or a failure code.
    outcome                     TEXT NOT NULL,
    created_at                  TEXT NOT NULL
) STRICT;

CREATE INDEX generations_run ON generations (run_id, id);
CREATE INDEX generations_chapter ON generations (story_id, chapter);

-- Running totals: calls, and tokens counted as the server reported them,
-- else as estimated.
ALTER TABLE workflow_runs ADD COLUMN usage_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_runs ADD COLUMN usage_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_runs ADD COLUMN usage_completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stories ADD COLUMN usage_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stories ADD COLUMN usage_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stories ADD COLUMN usage_completion_tokens INTEGER NOT NULL DEFAULT 0;
