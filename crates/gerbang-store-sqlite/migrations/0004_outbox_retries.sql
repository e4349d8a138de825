-- Retries with back-off, priorities, and superseded sends.
--
-- rounds:     rounds in which every provider failed; the worker's back-off grows with it.
-- not_before: a deferred message is not claimed before this instant (ms since the epoch).
-- priority:   0 = a code someone is waiting for, 1 = a notification; lower is claimed first.
ALTER TABLE outbox ADD COLUMN rounds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

DROP INDEX outbox_waiting;
CREATE INDEX outbox_waiting ON outbox (priority, id) WHERE status IN ('queued', 'claimed');
-- A resend drops the earlier send of the same verification still waiting in the queue.
CREATE INDEX outbox_waiting_verification ON outbox (verification) WHERE status = 'queued';
