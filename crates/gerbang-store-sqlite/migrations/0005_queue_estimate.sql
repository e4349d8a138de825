-- The queue estimate in a verification's status: how many messages were handed off in the last
-- minute (the drain rate) is counted over this index.
CREATE INDEX delivery_attempts_attempted ON delivery_attempts (attempted_at);
