-- Messages managers keep current (the "latest update"): every published version is kept,
-- with its author and time; a draft per message waits to be published. Publishing bumps
-- content_revision, which every instance checks before each call step.
CREATE TABLE line_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,                 -- the call-flow node, e.g. latest_update
    body         TEXT NOT NULL,                 -- as the manager wrote it
    state        TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    author_id    TEXT NOT NULL REFERENCES users (id),
    created_at   TEXT NOT NULL,
    note         TEXT                           -- e.g. "restored version 3"
);
CREATE INDEX line_messages_name ON line_messages (name, state, id);

CREATE TABLE content_revision (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revision    INTEGER NOT NULL
);
INSERT INTO content_revision (id, revision) VALUES (1, 0);
