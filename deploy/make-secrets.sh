#!/bin/sh
# Makes the secret files of the docker-compose stack in deploy/secrets/ (or $1): random
# passwords and keys, one file each. The folder is its owner's only (0700), so no other user of
# this host reaches them; the files themselves are 0444, because compose bind-mounts each file
# into the containers as it is, and the services there run as their own users (the app as uid
# 10001, Redis and ClickHouse as theirs). Existing files are kept, so
# running it again never changes a key (a new pseudonym key would split every household's
# history: rotate with `loyalty pseudonym rotate`, see README).
#
#   sh deploy/make-secrets.sh
#   loyalty clients add checkout-app --scope bonus:read --file deploy/secrets/api_clients
set -eu
DIR="${1:-$(dirname "$0")/secrets}"
umask 077
mkdir -p "$DIR"
chmod 0700 "$DIR"

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

make() {  # name, content (only when the file does not exist yet)
  if [ ! -e "$DIR/$1" ]; then
    printf '%s\n' "$2" > "$DIR/$1"
    chmod 0444 "$DIR/$1"
    echo "made $DIR/$1"
  fi
}

make pseudonym_key "$(random)"
make audit_key "$(random)"
make redis_worker_url "redis://worker:$(random)@redis:6379/0"
make redis_api_url "redis://api:$(random)@redis:6379/0"
make redis_segments_url "redis://segments:$(random)@redis:6379/0"
make clickhouse_writer_url "clickhouse://loyalty:$(random)@clickhouse:9000/loyalty"
make clickhouse_segments_url "clickhouse://segments:$(random)@clickhouse:9000/loyalty"
make clickhouse_grafana_password "$(random)"
make grafana_admin_password "$(random)"
if [ ! -e "$DIR/api_clients" ]; then
  printf '# API clients: add them with `loyalty clients add NAME --scope ... --file %s`\n' \
    "$DIR/api_clients" > "$DIR/api_clients"
  chmod 0644 "$DIR/api_clients"  # written by `loyalty clients add`, read by the API
  echo "made $DIR/api_clients (empty: the API refuses to start until a client is added)"
fi
