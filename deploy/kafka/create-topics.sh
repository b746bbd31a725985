#!/usr/bin/env bash
# One-shot topic creation for the docker-compose stack (the `kafka-init` service).
#
# Creates the service's topics if they do not exist yet (an existing topic is left as it is:
# Kafka cannot lower a partition count, and raising it would move keys between partitions).
# The partition count bounds how many worker replicas share the work: with 6, up to 6
# `worker` replicas each get partitions; more replicas would idle.
#
# Environment: BOOTSTRAP (kafka:9092), TOPIC_PREFIX (loyalty.), PARTITIONS (6),
# REPLICATION_FACTOR (1 on a single broker).
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
TOPIC_PREFIX="${TOPIC_PREFIX:-loyalty.}"
PARTITIONS="${PARTITIONS:-6}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
KAFKA_TOPICS=/opt/kafka/bin/kafka-topics.sh
NINETY_DAYS_MS=7776000000

# name and extra --config options; the names are stream.worker.TOPICS
create() {
  local name="$1"
  shift
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "${TOPIC_PREFIX}${name}" --partitions "$PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" "$@"
}

create swipes
create register
create purchase-lines
# what the bank side and the people fixing bad input read: kept longer than the default week
create bonus-payouts --config "retention.ms=${NINETY_DAYS_MS}"
create dead-letters --config "retention.ms=${NINETY_DAYS_MS}"
create member-payments --config "retention.ms=${NINETY_DAYS_MS}"
# audit/1 records (the analytics sink keeps them in ClickHouse audit_log for good)
create audit --config "retention.ms=${NINETY_DAYS_MS}"

"$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic "${TOPIC_PREFIX}swipes"
