-- Four-eyes requests (crates/gerbang-store/src/requests.rs): a contact change at a branch counter
-- waiting for a second person's approval, then for the new contact's code. The new contact, the
-- identity document and the reason are sealed; states, people and times (Unix ms) are clear.
CREATE TABLE contact_change_requests (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    ticket TEXT NOT NULL,
    details BLOB NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    completed_at INTEGER,
    verification_id BLOB
);
CREATE INDEX contact_change_requests_pending ON contact_change_requests (state, requested_at);
