-- The SMS pumping brake (crates/gerbang-store/src/pumping.rs): codes sent to and entered from each
-- number block (a phone number without its last 4 digits) per minute, and the brakes. Times are
-- Unix ms.
CREATE TABLE block_counts (
    block TEXT NOT NULL,
    minute INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    PRIMARY KEY (block, minute)
);

CREATE TABLE block_brakes (
    id INTEGER PRIMARY KEY,
    block TEXT NOT NULL,
    braked_at INTEGER NOT NULL,
    until INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    lifted_at INTEGER,
    lifted_by TEXT
);
CREATE INDEX block_brakes_block ON block_brakes (block, id);
CREATE INDEX block_brakes_until ON block_brakes (until);
