-- Verifications found by the participant they were started for (issue 4: the staff trail,
-- `gerbang participants trail --nik`). Same shape as the SQLite migration; change both together.
--
-- nik_digest: the same keyed HMAC digest of the NIK as participants.nik_digest (16 bytes, the
-- registry's lookup key, so no new key), written with every insert or replace of the row; NULL for
-- a verification started without a NIK. Rows written before this migration stay NULL (the digest
-- needs the personal-data key, which SQL does not have; a row gains it when it is next written):
-- the trail begins with the verifications made after the upgrade. The body stays the only place
-- the NIK itself is kept, sealed. A nullable column without a default rewrites nothing: instant on a
-- large table.
ALTER TABLE verifications ADD COLUMN nik_digest BYTEA;

-- A participant's verifications, newest first: ids begin with their creation time, so one
-- backward index scan of (nik_digest, id) answers `ORDER BY id DESC LIMIT n` without a sort.
-- Partial: verifications started without a NIK stay out of it.
CREATE INDEX verifications_nik ON verifications (nik_digest, id) WHERE nik_digest IS NOT NULL;
