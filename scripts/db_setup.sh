#!/usr/bin/env bash
# Create the database (if missing), the per-service roles and schemas, and run
# every service's migrations. Usage: scripts/db_setup.sh [DBNAME] [--fresh]
# ONLY_SERVICES="auth movie" limits which services are migrated.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DB="${1:-${DB_NAME:-moviebooking}}"
FRESH="${2:-}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}"
ADMIN="${PGADMIN_USER:-postgres}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

if [[ "$FRESH" == "--fresh" ]]; then
  psql -U "$ADMIN" -d postgres -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"
fi
if ! psql -U "$ADMIN" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  psql -U "$ADMIN" -d postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\""
fi
PGUSER="$ADMIN" POSTGRES_DB="$DB" bash "$ROOT/database/init/01-roles-and-schemas.sh"

for svc in ${ONLY_SERVICES:-auth movie booking payment notification}; do
  if [[ -f "$ROOT/services/${svc}-service/${svc}_service/migrations/env.py" ]]; then
    DATABASE_URL="postgresql+asyncpg://${svc}_service:${DB_PASSWORD:-dev-only-db-password}@${PGHOST}:${PGPORT}/${DB}" \
      "$PY" -m servicekit.migrations "${svc}_service"
  fi
done
