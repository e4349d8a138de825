-- The audit log (crates/gerbang-store/src/audit.rs): every account event and staff action, numbered
-- 1, 2, 3, … with no gaps, each entry MACed over its number, its fields and the MAC of the entry
-- before it. Times are Unix ms. No personal data.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    account_id BIGINT REFERENCES accounts (id),
    ticket TEXT,
    detail TEXT NOT NULL,
    -- NULL only on the events carried over from account_events below, until the store chains
    -- them the next time it opens (it holds the key; a migration does not).
    prev_mac BYTEA,
    mac BYTEA
);
CREATE INDEX audit_log_account ON audit_log (account_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The number and MAC of the last entry; appends update it under the write lock.
CREATE TABLE audit_head (
    one SMALLINT PRIMARY KEY CHECK (one = 1),
    seq BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
INSERT INTO audit_head (one, seq, mac) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

INSERT INTO audit_log (seq, at, actor, action, account_id, detail)
SELECT ROW_NUMBER() OVER (ORDER BY id), at,
       CASE WHEN kind IN ('locked_temporarily', 'locked_permanently') THEN 'system'
            WHEN kind = 'lock_lifted' AND detail LIKE 'by %' THEN 'operator:' || substr(detail, 4)
            ELSE 'participant' END,
       kind, account_id, detail
FROM account_events;
DROP TABLE account_events;
