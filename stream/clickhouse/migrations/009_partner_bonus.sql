-- Contract §12: the Bonus each partner's customers earned at its checkouts in a closed month
-- (what the partner is invoiced), as `loyalty partner-settlement` computed it. Aggregates only:
-- no household id, key or pseudonym. A settlement run again replaces its rows; read with FINAL.
CREATE TABLE IF NOT EXISTS partner_bonus
(
    month Date,
    partner_id String,
    partner_name String,
    households UInt32,
    partner_amount_cents Int64,
    bonus_cents Int64,
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toYYYYMM(month)
ORDER BY (month, partner_id);
