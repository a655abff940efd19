-- storyflow schema, version 7: search over chapters.
--
-- An FTS5 index over each chapter's title and text that stores no text of
-- its own: it reads `chapters` (external content, keyed by the chapters'
-- rowid), so the words are kept once. Triggers keep it in step with every
-- write of a chapter, in the transaction of that write; the update trigger
-- fires only when the title or the text changes (not on a summary, a lock or
-- a run id). `unicode61 remove_diacritics 2` lets "cafe" find "café".
--
-- The 'delete' command must be given the old values exactly as indexed,
-- which the triggers take from `old`. When the index and the chapters
-- disagree anyway (a write with the triggers absent), the health check
-- reports SEARCH_INDEX and `--fix` rebuilds the index from the chapters.

CREATE VIRTUAL TABLE chapters_fts USING fts5 (
    title,
    content,
    content = 'chapters',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER chapters_fts_insert AFTER INSERT ON chapters BEGIN
    INSERT INTO chapters_fts (rowid, title, content) VALUES (new.rowid, new.title, new.content);
END;

CREATE TRIGGER chapters_fts_delete AFTER DELETE ON chapters BEGIN
    INSERT INTO chapters_fts (chapters_fts, rowid, title, content)
        VALUES ('delete', old.rowid, old.title, old.content);
END;

CREATE TRIGGER chapters_fts_update AFTER UPDATE OF title, content ON chapters BEGIN
    INSERT INTO chapters_fts (chapters_fts, rowid, title, content)
        VALUES ('delete', old.rowid, old.title, old.content);
    INSERT INTO chapters_fts (rowid, title, content) VALUES (new.rowid, new.title, new.content);
END;

-- The chapters written before this version.
INSERT INTO chapters_fts (chapters_fts) VALUES ('rebuild');
