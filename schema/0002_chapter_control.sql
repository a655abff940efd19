-- storyflow schema, version 2: long books and chapter-level control.

-- A short account of each chapter, written by the generator after it, so
-- that later prompts carry the story so far within the context budget.
-- Empty when unknown (an edited chapter); the engine writes it again.
ALTER TABLE chapters ADD COLUMN summary TEXT NOT NULL DEFAULT '';
ALTER TABLE chapters ADD COLUMN updated_at TEXT;

-- A run that stops after this chapter (NULL: the whole book).
ALTER TABLE workflow_runs ADD COLUMN until_chapter INTEGER CHECK (until_chapter IS NULL OR until_chapter >= 1);
-- A run that rewrites only this chapter (NULL: write the missing ones).
ALTER TABLE workflow_runs ADD COLUMN regenerate_chapter INTEGER CHECK (regenerate_chapter IS NULL OR regenerate_chapter >= 1);
