-- The registry's unique lookups become named indexes instead of inline UNIQUE constraints, whose
-- automatic indexes SQLite cannot drop. A first load (an import into an empty registry) drops the
-- five lookup indexes, appends its rows and builds the indexes by sorting when it commits
-- (`gerbang_store::first_load`); the names below are the ones it builds again. Same columns, same
-- rules, same row ids; nothing references this table.
CREATE TABLE participants_named (
    id INTEGER PRIMARY KEY,
    nik_digest BLOB NOT NULL,
    card_digest BLOB NOT NULL,
    kpj_digest BLOB,
    phone_digest BLOB,
    email_digest BLOB,
    content_digest BLOB NOT NULL,
    sealed BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

INSERT INTO participants_named (id, nik_digest, card_digest, kpj_digest, phone_digest, email_digest,
                                content_digest, sealed, status, revision, created_at, updated_at)
SELECT id, nik_digest, card_digest, kpj_digest, phone_digest, email_digest, content_digest, sealed,
       status, revision, created_at, updated_at
FROM participants;

DROP TABLE participants;
ALTER TABLE participants_named RENAME TO participants;

-- The NIK is a participant's identity: imports upsert on it.
CREATE UNIQUE INDEX participants_nik ON participants (nik_digest);
-- One card number per participant; a second NIK claiming it is an import conflict, not an update.
-- A violation names the column (`participants.card_digest`): that is how the store tells which
-- number clashed.
CREATE UNIQUE INDEX participants_card ON participants (card_digest);
CREATE UNIQUE INDEX participants_kpj ON participants (kpj_digest);
-- Back-office search by phone or email on file (SPEC §6); partial, since many rows have neither.
-- Not unique: family members often share one phone or email in the membership data.
CREATE INDEX participants_phone ON participants (phone_digest) WHERE phone_digest IS NOT NULL;
CREATE INDEX participants_email ON participants (email_digest) WHERE email_digest IS NOT NULL;
