-- Complaint tickets (crates/gerbang-store/src/tickets.rs). The subject and the notes are staff's
-- free text, sealed with the personal-data key. Times are Unix ms.
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    account_id INTEGER REFERENCES accounts (id),
    opened_by TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    subject BLOB NOT NULL
);
CREATE INDEX tickets_account ON tickets (account_id, id);

CREATE TABLE ticket_notes (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    sealed BLOB NOT NULL
);
CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id, id);

-- The verifications a ticket is about (the code that never arrived).
CREATE TABLE ticket_verifications (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    verification_id BLOB NOT NULL,
    PRIMARY KEY (ticket_id, verification_id)
);
