-- Cancelling a verification drops its messages still in the outbox, waiting or claimed by a worker,
-- in the cancel's own transaction (so a cancelled code is never sent when the provider comes back).
-- The existing partial index covers only waiting rows; this one finds both kinds by verification
-- (its WHERE is the cancel's own term, so SQLite can use it too).
CREATE INDEX outbox_pending_verification ON outbox (verification) WHERE status IN ('queued', 'claimed');
