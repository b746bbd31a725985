-- Contract §7: one row per swipe line, returns negative (amount_cents, quantity, fuel_ml).
-- A redelivered swipe inserts the same (event_id, line_no) again: ReplacingMergeTree keeps one
-- (eventually), and every reader uses FINAL, so it counts once at once.
-- household_key is the keyed pseudonym (stream.pseudonym); no card, person or household id here.
CREATE TABLE IF NOT EXISTS purchase_lines
(
    event_id String,
    line_no UInt16,
    occurred_at DateTime('UTC'),
    month Date,
    store_id String,
    household_key UInt64,
    co_op String,
    sku String,
    product_group String,
    quantity Decimal(18, 3),
    amount_cents Int64,
    fuel_ml Int64,
    payment_method String,
    bonus_eligible UInt8,
    kind String,
    campaign_id String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(month)
ORDER BY (event_id, line_no);
