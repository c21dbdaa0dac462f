-- Mirrors migrations/sqlite/0008: the route each call step took through the call flow
-- (space-separated node ids; NULL when it passed through none, and for older steps).
ALTER TABLE call_steps ADD COLUMN path TEXT;
