-- storyflow schema, version 5: what every prompt needs to know of a story
-- besides its title, premise and outline.
--
-- `language` names the language the book is written in (a name such as
-- `French`, not a tag: the EPUB export maps it to BCP 47); `pov`, `tense` and
-- `style` are the writer's own words, empty when the writer has not said;
-- `target_words` is the length asked of each chapter. The lengths of the texts
-- are checked by the store, as for the title and premise; the rules a
-- hand-edited row could break are checked here too.

ALTER TABLE stories ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE stories ADD COLUMN language TEXT NOT NULL DEFAULT 'English'
    CHECK (language <> '');
ALTER TABLE stories ADD COLUMN pov TEXT NOT NULL DEFAULT '';
ALTER TABLE stories ADD COLUMN tense TEXT NOT NULL DEFAULT '';
ALTER TABLE stories ADD COLUMN style TEXT NOT NULL DEFAULT '';
ALTER TABLE stories ADD COLUMN target_words INTEGER NOT NULL DEFAULT 1500
    CHECK (target_words BETWEEN 100 AND 20000);
