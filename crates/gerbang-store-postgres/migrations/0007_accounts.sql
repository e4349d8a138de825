-- Participant accounts (issue 5): the account, its audit trail, its login sessions and the flows in
-- progress (registration, new-device login, recovery, contact change, step-up).
--
-- accounts: one sealed envelope per account (the serialised account: contacts, password hash, lock
-- state, trusted devices) and the keyed digests it is found by, the same HMAC digests as the
-- registry's. Each digest is unique: one account per NIK, one email and one mobile number per
-- account. `version` is bumped by every write; a write names the version it read (compare-and-set).
CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version BIGINT NOT NULL,
    nik_digest BYTEA NOT NULL UNIQUE,
    email_digest BYTEA UNIQUE,
    phone_digest BYTEA UNIQUE,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Lock, unlock, password and contact changes: what a branch officer reads. No personal data.
CREATE TABLE account_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX account_events_account ON account_events (account_id, id);

-- Sessions by the SHA-256 of their token (the token itself is never stored). Times are Unix ms.
CREATE TABLE account_sessions (
    token_digest BYTEA PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    device_digest BYTEA NOT NULL,
    started_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at BIGINT,
    step_ups TEXT NOT NULL
);
-- Revoking every live session of an account, or of one of its devices.
CREATE INDEX account_sessions_live ON account_sessions (account_id, device_digest)
    WHERE revoked_at IS NULL;

-- Flows in progress by the SHA-256 of their token; the state is sealed (it may hold a new contact
-- and a password hash). Swept a day after they expire.
CREATE TABLE account_flows (
    token_digest BYTEA PRIMARY KEY,
    sealed BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX account_flows_expiry ON account_flows (expires_at);
