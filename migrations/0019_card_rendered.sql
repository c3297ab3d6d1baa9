-- A card's text as rendered for its first attempt: every retry sends exactly
-- it (with the row's random_id), and a card whose answer was lost is found
-- in the chat by that exact text. NULL until the first attempt, and again
-- after an erasure scrubs the case (the card is then rendered from what is
-- left). `text` stays what it was: follow-ups' bodies and old cards only.
ALTER TABLE moderator_outbox ADD COLUMN rendered TEXT;
