-- The delivery-health page counts attempts over the last day by time.
CREATE INDEX delivery_attempts_time ON delivery_attempts (attempted_at);
