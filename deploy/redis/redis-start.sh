#!/bin/sh
# Entrypoint of the redis service: render the ACL file from the template and the URL secrets,
# then start redis-server with it (arguments: the server command line).
#
# Environment (defaults for the container): SECRETS_DIR (/run/secrets), ACL_TEMPLATE
# (/opt/loyalty/users.acl.template), ACL_FILE (/tmp/users.acl).
set -eu
SECRETS_DIR="${SECRETS_DIR:-/run/secrets}"
ACL_TEMPLATE="${ACL_TEMPLATE:-/opt/loyalty/users.acl.template}"
ACL_FILE="${ACL_FILE:-/tmp/users.acl}"

# sha256 of the password in the redis://user:password@host URL of secret $1
password_sha256() {
  url=$(cat "$SECRETS_DIR/$1")
  password=${url#*://*:}
  password=${password%%@*}
  if [ -z "$password" ] || [ "$password" = "$url" ]; then
    echo "redis-start: secret $1 must be redis://USER:PASSWORD@HOST:PORT/DB" >&2
    exit 1
  fi
  printf '%s' "$password" | sha256sum | cut -d' ' -f1
}

umask 077
# (an ACL file has no comments: the template's are dropped)
sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
    -e "s/@WORKER_SHA256@/$(password_sha256 redis_worker_url)/" \
    -e "s/@API_SHA256@/$(password_sha256 redis_api_url)/" \
    -e "s/@SEGMENTS_SHA256@/$(password_sha256 redis_segments_url)/" \
    "$ACL_TEMPLATE" > "$ACL_FILE"
# the image's entrypoint starts the server as the redis user (it needs to read the file)
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
  chown redis "$ACL_FILE"
fi
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
  exec docker-entrypoint.sh "$@" --aclfile "$ACL_FILE"
fi
exec "$@" --aclfile "$ACL_FILE"
