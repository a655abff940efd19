-- storyflow schema, version 8: the story bible.
--
-- One row per character, place, object, fact or thread the writer wants
-- every chapter to keep straight. `aliases` is a JSON array of strings (the
-- other names the entry goes by); `pinned` entries go into every chapter's
-- prompt, the others only when their name or an alias is mentioned. The
-- entries belong to their story: a purge deletes them with it.
--
-- `bible_fts` indexes name, aliases and description the way `chapters_fts`
-- indexes chapters (external content, triggers in the writing transaction,
-- rebuilt by `health-check --fix` when it disagrees, SEARCH_INDEX).

CREATE TABLE bible_entries (
    id          TEXT PRIMARY KEY NOT NULL,
    story_id    TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL
                CHECK (kind IN ('character', 'place', 'object', 'fact', 'thread')),
    name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
    aliases     TEXT NOT NULL DEFAULT '[]'
                CHECK (json_valid(aliases) AND json_type(aliases) = 'array'),
    description TEXT NOT NULL DEFAULT '',
    pinned      INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE INDEX bible_entries_story ON bible_entries (story_id, created_at);

CREATE VIRTUAL TABLE bible_fts USING fts5 (
    name,
    aliases,
    description,
    content = 'bible_entries',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER bible_fts_insert AFTER INSERT ON bible_entries BEGIN
    INSERT INTO bible_fts (rowid, name, aliases, description)
        VALUES (new.rowid, new.name, new.aliases, new.description);
END;

CREATE TRIGGER bible_fts_delete AFTER DELETE ON bible_entries BEGIN
    INSERT INTO bible_fts (bible_fts, rowid, name, aliases, description)
        VALUES ('delete', old.rowid, old.name, old.aliases, old.description);
END;

CREATE TRIGGER bible_fts_update AFTER UPDATE OF name, aliases, description ON bible_entries BEGIN
    INSERT INTO bible_fts (bible_fts, rowid, name, aliases, description)
        VALUES ('delete', old.rowid, old.name, old.aliases, old.description);
    INSERT INTO bible_fts (rowid, name, aliases, description)
        VALUES (new.rowid, new.name, new.aliases, new.description);
END;
