-- Verifications, rate-limit state and the outbox (issue 3). Times are Unix milliseconds, as in the
-- SQLite schema, so both backends share one codec.

-- One row per verification. Everything about it (purpose, destinations, code digests, attempts) is in
-- `body`, sealed with the personal-data key because it holds phone numbers and email addresses; the
-- engine always reads a verification by id, so nothing else needs an index.
CREATE TABLE verifications (
    id          BYTEA PRIMARY KEY,  -- 16 random bytes
    body        BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL,    -- when its last code dies: a cleanup horizon, not a rule
    updated_at  BIGINT NOT NULL
);

-- One row per rate-limit key (a destination, account, NIK, IP, device, number block or flow). The key
-- is a keyed digest, so the table reveals no phone number or NIK; `state` holds only send instants and
-- penalty ends. Transactions lock these rows (in key order) while they decide, which is what keeps the
-- limits exact across several gerbang instances.
CREATE TABLE rate_limits (
    key         BYTEA PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    idle_after  BIGINT NOT NULL
);

-- Messages acknowledged to a caller and waiting for (or past) hand-off to a provider. Written in the
-- same transaction as the verification, so an acknowledged request cannot lose its message.
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    verification  BYTEA NOT NULL,
    channel       TEXT NOT NULL,
    body          BYTEA NOT NULL,     -- sealed: destination and the text carrying the code
    status        TEXT NOT NULL CHECK (status IN ('queued', 'claimed', 'handed_off', 'dropped')),
    queued_at     BIGINT NOT NULL,
    claimed_until BIGINT,
    provider      TEXT,
    finished_at   BIGINT,
    reason        TEXT
);

-- Workers claim the oldest waiting messages with FOR UPDATE SKIP LOCKED; the partial index holds only
-- those, so it stays small however long the history grows.
CREATE INDEX outbox_waiting ON outbox (id) WHERE status IN ('queued', 'claimed');
-- The development inbox lists what its provider took, newest first.
CREATE INDEX outbox_dev_inbox ON outbox (id) WHERE provider = 'dev_inbox';
