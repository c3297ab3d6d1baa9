-- `orders_by_state (state)` is a prefix of `orders_due (state,
-- next_attempt_at)` (0007): every query it served, the other serves (the
-- metrics' count by state reads it as a covering index). Each order move
-- wrote both; now one.
DROP INDEX orders_by_state;
