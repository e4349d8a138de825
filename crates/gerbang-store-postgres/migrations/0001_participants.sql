-- The participant registry (SPEC §2). Same shape as the SQLite schema; change both together.
--
-- Personal data lives only in `sealed`: an XChaCha20-Poly1305 envelope of the whole record, bound to
-- its row by `nik_digest`. The *_digest columns are keyed HMAC-SHA256 digests (16 bytes) used for
-- exact lookup, so a dump of this database alone reveals no NIK, name, phone or email.
CREATE TABLE participants (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The NIK is a participant's identity: imports upsert on it.
    nik_digest BYTEA NOT NULL UNIQUE,
    -- One card number per participant; a second NIK claiming it is an import conflict, not an update.
    -- The constraint names (participants_card_digest_key, participants_kpj_digest_key) are how the
    -- store tells which number clashed.
    card_digest BYTEA NOT NULL UNIQUE,
    kpj_digest BYTEA UNIQUE,
    -- Not unique: family members often share one phone or email in the membership data.
    phone_digest BYTEA,
    email_digest BYTEA,
    -- Digest of the whole record, so re-importing an identical row writes nothing.
    content_digest BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    -- 1 on insert, +1 on every change: tells an import which rows were new.
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Back-office search by phone or email on file (SPEC §6); partial, since many rows have neither.
CREATE INDEX participants_phone ON participants (phone_digest) WHERE phone_digest IS NOT NULL;
CREATE INDEX participants_email ON participants (email_digest) WHERE email_digest IS NOT NULL;

-- Facts about this database itself, such as the fingerprint of the key that sealed it.
CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
