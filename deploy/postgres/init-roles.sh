#!/bin/sh
# The postgres image runs this once, when it creates the database (docker-entrypoint-initdb.d).
set -eu
for name in owner api worker relay projector notifier analytics; do
  eval "password=\${VODHUB_DB_PASSWORD_$(echo "$name" | tr a-z A-Z):-}"
  if [ -z "$password" ]; then echo "init-roles: VODHUB_DB_PASSWORD_$(echo "$name" | tr a-z A-Z) is not set" >&2; exit 1; fi
  set -- "$@" -v "${name}_password=$password"
done
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v "DBNAME=$POSTGRES_DB" "$@" \
  -f /etc/vodhub/postgres/roles.sql
