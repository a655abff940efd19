-- storyflow schema: the quality signals of each chapter version, stored with it.
--
-- `quality` is the signals as the API sends them (`length_score`,
-- `repetition`, `repeated_sentences`, `stock_phrases`, `name_variants`), as
-- JSON, written in the same transaction as the version row. JSON rather
-- than typed columns: three of the five signals are lists, the object is
-- only ever read whole (to be sent or judged against the thresholds), and
-- a signal added later needs no migration; SQLite's json_extract reaches
-- a single signal should a query ever need one.
--
-- NULL for versions saved before this migration: the read path measures
-- those from their text (as every read did before), so no backfill has to
-- run inside this migration over every version ever saved.

ALTER TABLE chapter_versions ADD COLUMN quality TEXT
    CHECK (quality IS NULL OR json_valid(quality));
