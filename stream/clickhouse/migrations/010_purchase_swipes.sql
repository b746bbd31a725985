-- Version 3 of loyalty.purchase-lines (stream/analytics/lines.py): ClickHouse explodes the
-- swipes itself. A swipe item (one JSONCompactEachRow row: the 16 fields of
-- lines.swipe_item, its lines as parallel arrays) is inserted into purchase_swipes, which
-- keeps nothing (ENGINE = Null); the view below turns each swipe into the purchase_lines rows
-- the Python path (lines.message_tuples) writes: line_no from 0, a return's quantity,
-- amount_cents and fuel_ml negative, the quantity rounded half-even to 3 decimals
-- (Decimal.quantize), bonus_eligible and campaign_id from the line's code.
--
-- A swipe that does not fit fails the whole INSERT (ClickHouse parses and checks the block
-- before the view writes any of it): values that do not parse as the column's type (the
-- inserts are strict JSON: no number or bool read as a string, no null), arrays of different
-- lengths (ARRAY JOIN), and the checks in WHERE, each of which fails as
-- "Cannot parse string 'purchase line: ...' as UInt8" (18.16's throwIf takes no message).
-- occurred_at and month arrive as text and are checked here as the Python path checks them.
-- Known differences from the Python path: a quoted number is accepted for an integer
-- ("398" as amount_cents, household_key); occurred_at must be RFC 3339 (YYYY-MM-DDTHH:MM:SS,
-- optional fraction, Z or +hh:mm), where Python's fromisoformat takes more spellings;
-- quantities are read with 10 decimals before the rounding (digits past the tenth are
-- dropped); a return of amount_cents or fuel_ml -2**63 wraps instead of failing.
CREATE TABLE IF NOT EXISTS purchase_swipes
(
    event_id String,
    occurred_text String,
    month_text String,
    store_id String,
    household_key UInt64,
    co_op String,
    payment_method String,
    kind String,
    campaign_text String,
    business Int64,
    skus Array(String),
    product_groups Array(String),
    quantities Array(Decimal(38, 10)),
    amounts Array(Int64),
    fuels Array(Int64),
    codes Array(Int64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS purchase_swipes_to_lines TO purchase_lines AS
SELECT
    event_id,
    toUInt16(line_index - 1) AS line_no,
    toDateTime(parseDateTimeBestEffort(occurred_text), 'UTC') AS occurred_at,
    toDate(month_text) AS month,
    store_id,
    household_key,
    co_op,
    sku,
    product_group,
    -- the quantity's text, rounded half-even to 3 decimals (as Decimal.quantize), then signed
    (toDecimal64(concat(
            replaceRegexpOne(replaceRegexpOne(toString(q_value) AS q_text, '^-', '') AS q_digits, '\\..*$', ''),
            '.',
            substring(concat(
                replaceRegexpOne(q_digits, '^[0-9]*\\.?', '') AS q_fraction, '000'), 1, 3
            ) AS q_first3),
        3)
        + if((replaceRegexpOne(substring(q_fraction, 4), '0+$', '') AS q_rest) > '5'
                OR (q_rest = '5' AND toUInt8(substring(q_first3, 3, 1)) % 2 = 1),
             toDecimal64('0.001', 3), toDecimal64('0', 3)))
        * toInt8(if((kind = 'return') != (substring(q_text, 1, 1) = '-'), -1, 1)) AS quantity,
    amount * if(kind = 'return', -1, 1) AS amount_cents,
    fuel * if(kind = 'return', -1, 1) AS fuel_ml,
    payment_method,
    toUInt8(business = 0 AND code != 0) AS bonus_eligible,
    kind,
    if(code = 2, campaign_text, '') AS campaign_id,
    now() AS inserted_at  -- the table's default; 18.16 does not fill it in for a view
FROM purchase_swipes
LEFT ARRAY JOIN
    arrayEnumerate(skus) AS line_index,
    skus AS sku,
    product_groups AS product_group,
    quantities AS q_value,
    amounts AS amount,
    fuels AS fuel,
    codes AS code
WHERE toUInt8(multiIf(
    event_id = '', 'purchase line: event_id must be a non-empty string',
    store_id = '', 'purchase line: store_id must be a non-empty string',
    kind NOT IN ('purchase', 'return'), 'purchase line: kind must be purchase or return',
    business NOT IN (0, 1), 'purchase line: business must be 0 or 1',
    NOT match(occurred_text, '^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$')
        OR toString(toDate(substring(occurred_text, 1, 10))) != substring(occurred_text, 1, 10),
        'purchase line: bad occurred_at (UTC text, ...Z, or with an offset)',
    NOT match(month_text, '^[0-9]{4}-[0-9]{2}-01$') OR toString(toDate(month_text)) != month_text,
        'purchase line: month must be the first day of a month',
    empty(skus) OR length(skus) > 65536, 'purchase line: a swipe has 1 to 65536 lines',
    code NOT IN (0, 1, 2), 'purchase line: code must be 0, 1 or 2',
    NOT match(q_text, '^-?[0-9]{1,15}(\\.[0-9]+)?$'), 'purchase line: bad quantity',
    '0')) = 0;
