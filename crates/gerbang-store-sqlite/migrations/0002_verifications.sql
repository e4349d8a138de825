-- Verifications, rate-limit state and the outbox (issue 3). Times are Unix milliseconds.

-- One row per verification. Everything about it (purpose, destinations, code digests, attempts) is in
-- `body`, sealed with the personal-data key because it holds phone numbers and email addresses; the
-- engine always reads a verification by id, so nothing else needs an index.
CREATE TABLE verifications (
    id          BLOB PRIMARY KEY,   -- 16 random bytes
    body        BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,   -- when its last code dies: a cleanup horizon, not a rule
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per rate-limit key (a destination, account, NIK, IP, device, number block or flow). The key
-- is a keyed digest, so the table reveals no phone number or NIK; `state` holds only send instants and
-- penalty ends. A row whose `idle_after` has passed can refuse nothing and may be deleted.
CREATE TABLE rate_limits (
    key         BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    idle_after  INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages acknowledged to a caller and waiting for (or past) hand-off to a provider. Written in the
-- same transaction as the verification, so an acknowledged request cannot lose its message.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    verification  BLOB NOT NULL,
    channel       TEXT NOT NULL,
    body          BLOB NOT NULL,      -- sealed: destination and the text carrying the code
    status        TEXT NOT NULL CHECK (status IN ('queued', 'claimed', 'handed_off', 'dropped')),
    queued_at     INTEGER NOT NULL,
    claimed_until INTEGER,
    provider      TEXT,
    finished_at   INTEGER,
    reason        TEXT
);

-- Workers claim the oldest waiting messages; the partial index holds only those, so it stays small
-- however long the history grows.
CREATE INDEX outbox_waiting ON outbox (id) WHERE status IN ('queued', 'claimed');
-- The development inbox lists what its provider took, newest first.
CREATE INDEX outbox_dev_inbox ON outbox (id) WHERE provider = 'dev_inbox';
