-- storyflow schema, version 1.
-- Released migrations are never edited: add a new numbered file instead.
-- Timestamps are UTC RFC 3339 text with millisecond precision
-- (`2026-11-29T19:08:16.123Z`): fixed width, so they compare correctly as text.

CREATE TABLE stories (
    id            TEXT PRIMARY KEY NOT NULL,
    title         TEXT NOT NULL,
    premise       TEXT NOT NULL DEFAULT '',
    outline       TEXT NOT NULL DEFAULT '',
    -- NULL means "derive it": from the outline, else the configured default.
    chapter_count INTEGER CHECK (chapter_count IS NULL OR chapter_count >= 1),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE INDEX stories_created ON stories (created_at, id);

CREATE TABLE workflow_runs (
    id               TEXT PRIMARY KEY NOT NULL,
    story_id         TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    step             TEXT,
    chapters_done    INTEGER NOT NULL DEFAULT 0 CHECK (chapters_done >= 0),
    chapters_total   INTEGER NOT NULL DEFAULT 0 CHECK (chapters_total >= 0),
    -- How many times a worker has claimed this run (1 on the first claim).
    attempt          INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    -- The worker holding the run, until when, and when it last proved it was alive.
    lease_owner      TEXT,
    lease_expires_at TEXT,
    heartbeat_at     TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
) STRICT;

CREATE INDEX workflow_runs_story ON workflow_runs (story_id);
CREATE INDEX workflow_runs_status ON workflow_runs (status, created_at);
-- At most one active run per story: two runs writing the same chapters would race.
CREATE UNIQUE INDEX workflow_runs_one_active ON workflow_runs (story_id)
    WHERE status IN ('pending', 'running');

CREATE TABLE chapters (
    story_id   TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL CHECK (number >= 1),
    title      TEXT NOT NULL,
    content    TEXT NOT NULL,
    word_count INTEGER NOT NULL,
    run_id     TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (story_id, number)
) STRICT;

CREATE TABLE run_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL
) STRICT;

CREATE INDEX run_events_run ON run_events (run_id, id);

-- One row per background sweep (start-up and timer): what it found and changed.
CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    findings    TEXT NOT NULL,
    changes     TEXT NOT NULL
) STRICT;
