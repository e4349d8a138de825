-- The SMS pumping brake (crates/gerbang-store/src/pumping.rs): codes sent to and entered from each
-- number block (a phone number without its last 4 digits) per minute, and the brakes. Times are
-- Unix ms.
CREATE TABLE block_counts (
    block TEXT NOT NULL,
    minute BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    verified BIGINT NOT NULL,
    PRIMARY KEY (block, minute)
);

CREATE TABLE block_brakes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    block TEXT NOT NULL,
    braked_at BIGINT NOT NULL,
    until BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    verified BIGINT NOT NULL,
    lifted_at BIGINT,
    lifted_by TEXT
);
CREATE INDEX block_brakes_block ON block_brakes (block, id);
CREATE INDEX block_brakes_until ON block_brakes (until);
