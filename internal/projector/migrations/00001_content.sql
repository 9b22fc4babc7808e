-- The content table: one row per content stream, as of the version of
-- the last event folded into it.

-- +goose Up
CREATE TABLE content (
    -- The content's id: its stream and the events' aggregate id.
    id text PRIMARY KEY,
    -- From ContentSubmitted; NULL while only later events were folded.
    author_id text,
    status text NOT NULL CHECK (status IN ('PENDING', 'ANALYZED')),
    -- ContentAnalyzed's analysis_result: entities, is_toxic, token_count.
    analysis jsonb,
    -- Version of the last event of the stream folded into the row. An
    -- event at or below it changes nothing.
    version bigint NOT NULL CHECK (version > 0),
    -- Append times of the first and the last folded event, so that a
    -- rebuild from the topic writes the same rows.
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX content_author_id_idx ON content (author_id);

-- +goose Down
DROP TABLE content;
