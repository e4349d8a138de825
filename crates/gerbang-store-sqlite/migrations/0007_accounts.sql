-- Participant accounts (issue 5): the account, its audit trail, its login sessions and the flows in
-- progress (registration, new-device login, recovery, contact change, step-up).
--
-- accounts: one sealed envelope per account (the serialised account: contacts, password hash, lock
-- state, trusted devices) and the keyed digests it is found by, the same HMAC digests as the
-- registry's. Each digest is unique: one account per NIK, one email and one mobile number per
-- account. `version` is bumped by every write; a write names the version it read (compare-and-set).
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    nik_digest BLOB NOT NULL UNIQUE,
    email_digest BLOB UNIQUE,
    phone_digest BLOB UNIQUE,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Lock, unlock, password and contact changes: what a branch officer reads. No personal data.
CREATE TABLE account_events (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX account_events_account ON account_events (account_id, id);

-- Sessions by the SHA-256 of their token (the token itself is never stored). Times are Unix ms.
CREATE TABLE account_sessions (
    token_digest BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    device_digest BLOB NOT NULL,
    started_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    revoked_at INTEGER,
    step_ups TEXT NOT NULL
) WITHOUT ROWID;
-- Revoking every live session of an account, or of one of its devices.
CREATE INDEX account_sessions_live ON account_sessions (account_id, device_digest)
    WHERE revoked_at IS NULL;

-- Flows in progress by the SHA-256 of their token; the state is sealed (it may hold a new contact
-- and a password hash). Swept a day after they expire.
CREATE TABLE account_flows (
    token_digest BLOB PRIMARY KEY,
    sealed BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX account_flows_expiry ON account_flows (expires_at);
