-- Pseudonym key rotations (`loyalty pseudonym rotate`): one row per rotation, naming the new
-- LOYALTY_PSEUDONYM_KEY by a fingerprint (an HMAC of a fixed text under the key: it does not
-- reveal the key). A worker whose key is not the latest one here refuses to write.
CREATE TABLE IF NOT EXISTS pseudonym_keys
(
    fingerprint String,
    households UInt64,
    rotated_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY rotated_at;
