-- One row per try to deliver an outbox message (issue 4): the provider, its id for the message, and
-- what its answer and receipts said. No personal data: the destination stays in the sealed outbox
-- message. Times are Unix milliseconds.
CREATE TABLE delivery_attempts (
    id BIGSERIAL PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    verification BYTEA NOT NULL,
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_message_id TEXT,
    status TEXT NOT NULL,
    cause TEXT,
    detail TEXT,
    attempted_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX delivery_attempts_verification ON delivery_attempts (verification, id);

-- Receipts find their attempt by the provider's message id.
CREATE INDEX delivery_attempts_message ON delivery_attempts (provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
