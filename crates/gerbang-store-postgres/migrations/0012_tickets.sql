-- Complaint tickets (crates/gerbang-store/src/tickets.rs). The subject and the notes are staff's
-- free text, sealed with the personal-data key. Times are Unix ms.
CREATE TABLE tickets (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    account_id BIGINT REFERENCES accounts (id),
    opened_by TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    subject BYTEA NOT NULL
);
CREATE INDEX tickets_account ON tickets (account_id, id);

CREATE TABLE ticket_notes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    sealed BYTEA NOT NULL
);
CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id, id);

-- The verifications a ticket is about (the code that never arrived).
CREATE TABLE ticket_verifications (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    verification_id BYTEA NOT NULL,
    PRIMARY KEY (ticket_id, verification_id)
);
