#!/usr/bin/env bash
# One role and one schema per service; a role can touch only its own schema.
# Runs as the PostgreSQL init script in docker-compose, and from scripts/db_setup.sh
# natively. Idempotent. Passwords come from the environment (dev defaults).
set -euo pipefail

DB="${POSTGRES_DB:-${PGDATABASE:-moviebooking}}"
DEV_PASSWORD="dev-only-db-password"

sql=""
for pair in auth:auth_service movie:movie_service booking:booking_service \
            payment:payment_service notification:notification_service; do
  schema="${pair%%:*}"; role="${pair##*:}"
  var="$(echo "${role}" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="${!var:-$DEV_PASSWORD}"
  sql+="
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN
    CREATE ROLE ${role} LOGIN PASSWORD '${password}';
  ELSE
    ALTER ROLE ${role} LOGIN PASSWORD '${password}';
  END IF;
END \$\$;
GRANT CONNECT ON DATABASE \"${DB}\" TO ${role};
CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${role};
ALTER SCHEMA ${schema} OWNER TO ${role};
ALTER ROLE ${role} IN DATABASE \"${DB}\" SET search_path = ${schema};
"
done
sql+="
REVOKE ALL ON DATABASE \"${DB}\" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
"
psql -v ON_ERROR_STOP=1 -q --dbname "${DB}" <<<"${sql}"
