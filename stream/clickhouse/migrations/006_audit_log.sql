-- Contract §10: every audit/1 record from loyalty.audit, kept (no retention, no erasure: it is
-- the account of who read whose data). subject_key is the keyed hash of the household id under
-- LOYALTY_AUDIT_KEY (`loyalty audit subject-key --household H` prints it); no id is stored.
-- A redelivered record has the same (subject_key, at, audit_id): read with FINAL.
CREATE TABLE IF NOT EXISTS audit_log
(
    audit_id String,
    at DateTime('UTC'),
    client String,
    action String,
    subject_key String,
    outcome String,
    detail String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (subject_key, at, audit_id);
