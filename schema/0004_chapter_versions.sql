-- storyflow schema, version 4: nothing the writer wrote is lost.
--
-- Every save of a chapter adds a row to `chapter_versions`, in the same
-- transaction that writes the chapter row; the chapter row stays the fast
-- path for reading the current text and always equals its newest version.
-- Versions belong to the story, not to the chapter row: rolling a story back
-- to chapter K removes the rows of the later chapters, and their versions stay
-- to be restored.

CREATE TABLE chapter_versions (
    story_id   TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL CHECK (number >= 1),
    version    INTEGER NOT NULL CHECK (version >= 1),
    source     TEXT NOT NULL
               CHECK (source = 'generated' OR source = 'edited' OR source = 'regenerated'
                      OR source = 'restored' OR source = 'imported'),
    title      TEXT NOT NULL,
    content    TEXT NOT NULL,
    word_count INTEGER NOT NULL,
    run_id     TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (story_id, number, version)
) STRICT, WITHOUT ROWID;

-- Today's chapters become their first version: `edited` when the writer has
-- changed them since (an edit sets `updated_at` and clears the summary),
-- `regenerated` when a rewrite run wrote them last, `generated` otherwise.
INSERT INTO chapter_versions (story_id, number, version, source, title, content, word_count, run_id, created_at)
SELECT c.story_id, c.number, 1,
       CASE
           WHEN c.updated_at IS NULL THEN 'generated'
           WHEN EXISTS (SELECT 1 FROM workflow_runs r
                        WHERE r.id = c.run_id AND r.regenerate_chapter = c.number) THEN 'regenerated'
           ELSE 'edited'
       END,
       c.title, c.content, c.word_count, c.run_id, coalesce(c.updated_at, c.created_at)
FROM chapters c;

-- A locked chapter is changed by no run and no regenerate request.
ALTER TABLE chapters ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked = 0 OR locked = 1);

-- The trash: a deleted story keeps its row (so its runs are not orphans)
-- with the time it was deleted; story routes treat it as absent.
ALTER TABLE stories ADD COLUMN deleted_at TEXT;
CREATE INDEX stories_trash ON stories (deleted_at) WHERE deleted_at IS NOT NULL;
