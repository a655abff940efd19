-- storyflow schema: how long a streamed call took to send its first text.
--
-- NULL for a call that streamed nothing: a plain (non-streaming) request,
-- the builtin or command generator, or a call that failed before any text.
ALTER TABLE generations ADD COLUMN first_token_ms INTEGER
    CHECK (first_token_ms IS NULL OR first_token_ms >= 0);
