-- The Bonus rules as the dashboards and `loyalty report` compute with them, one row per write.
-- The worker's analytics stage and `loyalty migrate` write the rules of LOYALTY_RULES when
-- they start (stream.analytics.rules_table); a reader takes the row of the highest version
-- (argMax(column, version)), so the estimates follow rules.toml instead of hard-coded SQL.
-- One row is one INSERT: a reader never sees half a rule set. Arrays that share a prefix are
-- parallel: tier_* has one entry per tier of every bonus table ([from, to) in cents, the
-- top tier open-ended), co_op* maps the named co-ops to their table (the others use
-- 'default'), campaign_* one entry per campaign.
CREATE TABLE IF NOT EXISTS bonus_rules
(
    version UInt64,
    rules_sha256 String,
    timezone String,
    tier_table Array(String),
    tier_from_cents Array(Int64),
    tier_to_cents Array(Int64),
    tier_bp Array(UInt32),
    co_op Array(String),
    co_op_table Array(String),
    campaign_id Array(String),
    campaign_multiplier Array(UInt32),
    campaign_starts_at Array(DateTime('UTC')),
    campaign_ends_at Array(DateTime('UTC')),
    payment_benefit_bp UInt32,
    payment_benefit_methods Array(String),
    payment_benefit_excluded_product_groups Array(String),
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version;
