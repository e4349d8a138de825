-- Back-office staff (crates/gerbang-store/src/staff.rs): one sealed envelope per member (password
-- hash, TOTP secret, lockout), found by a unique name. Times are Unix ms.
CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Staff sessions by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE staff_sessions (
    token_digest BLOB PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff (id),
    started_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
