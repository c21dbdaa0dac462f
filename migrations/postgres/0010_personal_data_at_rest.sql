-- Personal data at rest (issue 7; mirrors migrations/sqlite/0010): callers' numbers (calls.caller, enquiries.callback_number,
-- call_answers 'callback_number') and recording references (enquiries.recording_url,
-- call_answers 'recording_url', recording_deletions.recording_url) are stored sealed
-- (`v1:<key id>:…`, src/crypto.rs), and looked up by a keyed hash (HMAC-SHA256) beside them.
-- The service seals the rows written before this migration at its next start (their hash is
-- NULL until then); `helpline rekey` moves every value to the current key.
ALTER TABLE calls ADD COLUMN caller_hash TEXT;
ALTER TABLE enquiries ADD COLUMN callback_hash TEXT;
ALTER TABLE recording_deletions ADD COLUMN recording_hash TEXT;

-- Lookups by number (open enquiries per number, folding "missed in queue", "called back?"
-- in the statistics) go through the hash; the index on the sealed number is of no use now.
CREATE INDEX enquiries_callback_hash ON enquiries (callback_hash, status);
DROP INDEX enquiries_callback_number;
-- A recording is queued for deletion at Twilio once (the sealed URL differs every time).
CREATE UNIQUE INDEX recording_deletions_hash ON recording_deletions (recording_hash);

-- Rows still in plain text, for the sealing pass at every start (empty once it has run).
CREATE INDEX calls_unsealed ON calls (call_sid) WHERE caller IS NOT NULL AND caller_hash IS NULL;
CREATE INDEX enquiries_unsealed ON enquiries (id) WHERE callback_hash IS NULL;
CREATE INDEX call_answers_unsealed ON call_answers (call_sid, name)
    WHERE name IN ('callback_number', 'recording_url') AND substr(value, 1, 3) <> 'v1:';
