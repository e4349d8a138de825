-- Back-office staff (crates/gerbang-store/src/staff.rs): one sealed envelope per member (password
-- hash, TOTP secret, lockout), found by a unique name. Times are Unix ms.
CREATE TABLE staff (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Staff sessions by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE staff_sessions (
    token_digest BYTEA PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES staff (id),
    started_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
