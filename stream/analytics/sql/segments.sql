-- Analytics queries over purchase_lines and household_segments, for stream.analytics.segments and for
-- dashboards. Each block starts with a "-- name:" line and is a standalone statement.
-- Parameters are ClickHouse's {name:Type}; stream.clickhouse.render() substitutes them as typed
-- literals (18.16 has no server-side binding); clickhouse-client on a new server takes them as
-- --param_name=value. Every read of purchase_lines uses FINAL: a redelivered swipe counts once.
-- Only pseudonymous keys and aggregates here: no household, person or card id.

-- name: segment_rows
-- One row per (household, segment) over the bonus months [from_month, as_of]. Households in
-- {excluded} (a person banned product_data_marketing, contract section 9) are never built.
-- Features (over the whole window; returns subtract, they are stored negative):
--   spend_cents         net amount of all lines, fuel included
--   visit_days          distinct local days ({tz}) with a purchase
--   recency_days        as_of_end minus the last local day with a purchase (a window with
--                       returns only counts from 1970-01-01: very large, so lapsed)
--   top_group           the product group with the most net spend, fuel groups left out
--                       (a group is a fuel group for a household if any line of it has fuel_ml)
--   top_group_share_bp  top_group's share of the non-fuel net spend, basis points (0..10000)
--   campaign_share_bp   share of net spend on lines inside a campaign (campaign_id != '')
--   fuel                1 if any purchase line carried fuel (fuel_ml > 0)
-- Segment codes (stable; thresholds are parameters, spend and visits per month on average):
--   spend:low < spend_medium_cents <= spend:medium < spend_high_cents <= spend:high
--     < spend_top_cents <= spend:top
--   visits:occasional < visits_regular_days <= visits:regular < visits_frequent_days
--     <= visits:frequent
--   lapsed              recency_days > lapsed_days
--   fuel                fuel = 1
--   affinity:<group>    top_group_share_bp >= affinity_share_bp
--   campaign_responder  campaign_share_bp >= campaign_share_bp (and some campaign spend)
SELECT
    {as_of:Date} AS build_month,
    {months:UInt8} AS months,
    household_key,
    segment,
    spend_cents,
    visit_days,
    recency_days,
    top_group,
    top_group_share_bp,
    campaign_share_bp,
    fuel
FROM
(
    SELECT
        household_key,
        spend_cents,
        toUInt32(length(days)) AS visit_days,
        toInt32({as_of_end:Date} - last_day) AS recency_days,
        top_group,
        toUInt32(if(nonfuel_spend > 0 AND top_group != '',
                    least(intDiv(top_spend * 10000, nonfuel_spend), 10000), 0)) AS top_group_share_bp,
        toUInt32(if(spend_cents > 0,
                    least(intDiv(greatest(campaign_cents, 0) * 10000, spend_cents), 10000), 0))
            AS campaign_share_bp,
        fuel,
        arrayFilter(code -> code != '', [
            multiIf(spend_cents < {spend_medium_cents:Int64} * {months:UInt8}, 'spend:low',
                    spend_cents < {spend_high_cents:Int64} * {months:UInt8}, 'spend:medium',
                    spend_cents < {spend_top_cents:Int64} * {months:UInt8}, 'spend:high',
                    'spend:top'),
            multiIf(visit_days < {visits_regular_days:UInt32} * {months:UInt8}, 'visits:occasional',
                    visit_days < {visits_frequent_days:UInt32} * {months:UInt8}, 'visits:regular',
                    'visits:frequent'),
            if(recency_days > {lapsed_days:Int32}, 'lapsed', ''),
            if(fuel = 1, 'fuel', ''),
            if(top_group != '' AND top_group_share_bp >= {affinity_share_bp:UInt32},
               concat('affinity:', top_group), ''),
            if(campaign_cents > 0 AND campaign_share_bp >= {campaign_share_bp:UInt32},
               'campaign_responder', '')
        ]) AS codes
    FROM
    (
        SELECT
            household_key,
            sum(g_spend) AS spend_cents,
            sum(g_campaign) AS campaign_cents,
            groupUniqArrayArray(g_days) AS days,
            max(g_last) AS last_day,
            max(g_fuel_bought) AS fuel,
            argMaxIf(product_group, g_spend, g_fuel_group = 0 AND g_spend > 0) AS top_group,
            maxIf(g_spend, g_fuel_group = 0 AND g_spend > 0) AS top_spend,
            sumIf(g_spend, g_fuel_group = 0) AS nonfuel_spend
        FROM
        (
            SELECT
                household_key,
                product_group,
                sum(amount_cents) AS g_spend,
                sumIf(amount_cents, campaign_id != '') AS g_campaign,
                groupUniqArrayIf(toDate(occurred_at, {tz:String}), kind = 'purchase') AS g_days,
                maxIf(toDate(occurred_at, {tz:String}), kind = 'purchase') AS g_last,
                max(fuel_ml != 0) AS g_fuel_group,
                max(kind = 'purchase' AND fuel_ml > 0) AS g_fuel_bought
            FROM purchase_lines FINAL
            WHERE month >= {from_month:Date} AND month <= {as_of:Date}
                AND NOT has(CAST({excluded:Array(UInt64)} AS Array(UInt64)), household_key)
            GROUP BY household_key, product_group
        )
        GROUP BY household_key
    )
)
ARRAY JOIN codes AS segment;

-- name: latest_build
-- The newest build month of household_segments and its window length (no row: none built).
SELECT build_month, any(months) AS months
FROM household_segments
GROUP BY build_month
ORDER BY build_month DESC
LIMIT 1;

-- name: build_households
-- Households segmented in one build.
SELECT uniqExact(household_key) AS households
FROM household_segments
WHERE build_month = {build_month:Date};

-- name: segment_members
-- The pseudonymous keys of one segment in one build.
SELECT DISTINCT household_key
FROM household_segments
WHERE build_month = {build_month:Date} AND segment = {segment:String};

-- name: segment_sizes
-- Households per segment in one build.
SELECT segment, uniqExact(household_key) AS households
FROM household_segments
WHERE build_month = {build_month:Date}
GROUP BY segment
ORDER BY segment;

-- name: assortment
-- Assortment planning: store x product group x bonus month over [from_month, to_month].
--   sales_cents      net sales (returns subtract)
--   households       distinct (pseudonymous) households with a line of the group
--   receipts         purchase receipts (distinct event_id) with the group
--   store_receipts   all purchase receipts of the store that month
--   basket_share_bp  receipts / store_receipts, basis points
-- Cells with fewer than min_households households are left out (small cells could point at
-- one household).
SELECT
    store_id,
    product_group,
    month,
    sales_cents,
    households,
    receipts,
    store_receipts,
    toUInt32(if(store_receipts = 0, 0, intDiv(receipts * 10000, store_receipts))) AS basket_share_bp
FROM
(
    SELECT
        store_id,
        product_group,
        month,
        sum(amount_cents) AS sales_cents,
        uniqExact(household_key) AS households,
        uniqExactIf(event_id, kind = 'purchase') AS receipts
    FROM purchase_lines FINAL
    WHERE month >= {from_month:Date} AND month <= {to_month:Date}
    GROUP BY store_id, product_group, month
) AS cells
ALL INNER JOIN
(
    SELECT
        store_id,
        month,
        uniqExactIf(event_id, kind = 'purchase') AS store_receipts
    FROM purchase_lines FINAL
    WHERE month >= {from_month:Date} AND month <= {to_month:Date}
    GROUP BY store_id, month
) AS stores USING (store_id, month)
WHERE households >= {min_households:UInt32}
ORDER BY month, store_id, product_group;
