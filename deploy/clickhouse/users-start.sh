#!/bin/bash
# Entrypoint of the clickhouse service: write the users of the loyalty database (writer,
# segment builder, Grafana's reader) from the templates and their secrets, then run the image's
# entrypoint.
# Passwords are stored as SHA-256 only. Environment: SECRETS_DIR (/run/secrets),
# USERS_TEMPLATE (/opt/loyalty/loyalty-users.xml.template),
# USERS_FILE (/etc/clickhouse-server/users.d/loyalty-users.xml).
set -euo pipefail
SECRETS_DIR="${SECRETS_DIR:-/run/secrets}"
USERS_TEMPLATE="${USERS_TEMPLATE:-/opt/loyalty/loyalty-users.xml.template}"
USERS_FILE="${USERS_FILE:-/etc/clickhouse-server/users.d/loyalty-users.xml}"

password_sha256() {  # of the clickhouse://user:password@host URL in secret $1
  local url password
  url=$(cat "$SECRETS_DIR/$1")
  password=${url#*://*:}
  password=${password%%@*}
  if [[ -z "$password" || "$password" == "$url" ]]; then
    echo "users-start: secret $1 must be clickhouse://USER:PASSWORD@HOST:PORT/DB" >&2
    exit 1
  fi
  printf '%s' "$password" | sha256sum | cut -d' ' -f1
}

GRAFANA_TEMPLATE="${GRAFANA_TEMPLATE:-/opt/loyalty/grafana.xml.template}"
GRAFANA_FILE="${GRAFANA_FILE:-/etc/clickhouse-server/users.d/grafana.xml}"
grafana_sha256=$(tr -d '\n' < "$SECRETS_DIR/clickhouse_grafana_password" | sha256sum | cut -d' ' -f1)

umask 027
sed -e "s/@WRITER_SHA256@/$(password_sha256 clickhouse_writer_url)/" \
    -e "s/@SEGMENTS_SHA256@/$(password_sha256 clickhouse_segments_url)/" \
    "$USERS_TEMPLATE" > "$USERS_FILE"
sed -e "s/@GRAFANA_SHA256@/$grafana_sha256/" "$GRAFANA_TEMPLATE" > "$GRAFANA_FILE"
chown clickhouse:clickhouse "$USERS_FILE" "$GRAFANA_FILE" 2>/dev/null || true
exec /entrypoint.sh "$@"
