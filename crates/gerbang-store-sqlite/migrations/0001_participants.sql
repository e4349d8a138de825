-- The participant registry (SPEC §2).
--
-- Personal data lives only in `sealed`: an XChaCha20-Poly1305 envelope of the whole record, bound to
-- its row by `nik_digest`. The *_digest columns are keyed HMAC-SHA256 digests (16 bytes) used for
-- exact lookup, so a copy of this file alone reveals no NIK, name, phone or email.
CREATE TABLE participants (
    id INTEGER PRIMARY KEY,
    -- The NIK is a participant's identity: imports upsert on it.
    nik_digest BLOB NOT NULL UNIQUE,
    -- One card number per participant; a second NIK claiming it is an import conflict, not an update.
    card_digest BLOB NOT NULL UNIQUE,
    kpj_digest BLOB UNIQUE,
    -- Not unique: family members often share one phone or email in the membership data.
    phone_digest BLOB,
    email_digest BLOB,
    -- Digest of the whole record, so re-importing an identical row writes nothing.
    content_digest BLOB NOT NULL,
    sealed BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    -- 1 on insert, +1 on every change: tells an import which rows were new.
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- Back-office search by phone or email on file (SPEC §6); partial, since many rows have neither.
CREATE INDEX participants_phone ON participants (phone_digest) WHERE phone_digest IS NOT NULL;
CREATE INDEX participants_email ON participants (email_digest) WHERE email_digest IS NOT NULL;

-- Facts about this database itself, such as the fingerprint of the key that sealed it.
CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
