-- Contract §11: the member payments emitted (member-payment/1), summed per year, co-op and kind,
-- for the business dashboard. Aggregates only: no household id, key or pseudonym. Written by
-- `loyalty member-payments` after its sends were confirmed (every run rewrites the year's sums,
-- so a run after a failed write repairs them); read with FINAL.
CREATE TABLE IF NOT EXISTS member_payment_totals
(
    year UInt16,
    co_op String,
    kind String,
    payments UInt32,
    amount_cents Int64,
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY (year, co_op, kind);
