-- The mobile operator of each delivery attempt's destination (its name; NULL for email), so that
-- delivery health can be told per operator: an operator's network failing shows as its own row.
ALTER TABLE delivery_attempts ADD COLUMN operator TEXT;
