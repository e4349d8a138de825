-- Issue 13 (hardening).
--
-- Accounts are named in answers by an opaque public id (`acct_` and 24 hex digits), never by the
-- row id, which would tell how many accounts exist and which came before which.
ALTER TABLE accounts ADD COLUMN public_id TEXT;
UPDATE accounts SET public_id = 'acct_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)
    WHERE public_id IS NULL;
CREATE UNIQUE INDEX accounts_public_id ON accounts (public_id);

-- Built-in captcha challenges already answered (rightly or wrongly), by their nonce, until the
-- challenge expires: a challenge is judged once across every instance and every restart.
CREATE TABLE captcha_nonces (
    nonce BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX captcha_nonces_expiry ON captcha_nonces (expires_at);
