-- storyflow schema: the writer's settings, edited on the page
-- (`GET|PUT /api/settings`).
--
-- One row per setting that was ever saved, its value as JSON text: a
-- partial update writes only the keys it names, a setting never saved has
-- no row (its default applies), and a setting a later release drops is a
-- row nobody reads. Which keys exist and what their values mean is
-- `src/store/settings.rs`'s business; the table holds no defaults.
--
-- `llm_api_key` is a row like the others: every backup copy is scrubbed of
-- it as it is written (`Store::backup`, with secure_delete), and no read of
-- this table ever leaves the process with it.

CREATE TABLE app_settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL CHECK (json_valid(value)),
    updated_at TEXT NOT NULL
) STRICT;
