-- Hub events too large for a NOTIFY payload (8000 bytes): the relaying node stores
-- the event here and notifies its id; the others read it. Rows older than ten
-- minutes are deleted by the relaying nodes (every node that was listening has read
-- them by then; one that was not catches up from the log, not from here).
CREATE TABLE cluster_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX cluster_events_at ON cluster_events (at_us);
