-- Mirrors migrations/sqlite/0006.
CREATE TABLE line_messages (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    author_id    TEXT NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    note         TEXT
);
CREATE INDEX line_messages_name ON line_messages (name, state, id);

CREATE TABLE content_revision (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revision    BIGINT NOT NULL
);
INSERT INTO content_revision (id, revision) VALUES (1, 0);
