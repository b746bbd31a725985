-- Marketing segments, one row per (build month, household, segment), with the household's
-- features copied on every row for dashboards. A build replaces its whole monthly partition
-- (DROP PARTITION, then INSERT ... SELECT), so a household that left a segment is gone from it.
CREATE TABLE IF NOT EXISTS household_segments
(
    build_month Date,
    months UInt8,
    household_key UInt64,
    segment String,
    spend_cents Int64,
    visit_days UInt32,
    recency_days Int32,
    top_group String,
    top_group_share_bp UInt32,
    campaign_share_bp UInt32,
    fuel UInt8,
    built_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(build_month)
ORDER BY (build_month, segment, household_key);
