#!/usr/bin/env bash
# Runs every test of the suite: lint, the pytest suite of mes_connector, the Odoo
# tests of the addons on a fresh database, and the end-to-end tests against real
# Odoo and simulator servers on 127.0.0.1.
#
# Needs Odoo 18 importable by python3 and a PostgreSQL server. Connection from the
# usual PG* variables (defaults: 127.0.0.1:5432, user postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
PYTHON=${PYTHON:-python3}
ADDONS=(mes_base mes_reconciliation mes_maintenance mes_quality)

step() { printf '\n==> %s\n' "$*"; }

step "Odoo"
if ! odoo_version=$(cd / && "$PYTHON" -c 'import odoo.release as r; print(r.version)' 2>&1); then
    echo "ERROR: '$PYTHON' cannot import odoo. The Odoo tests and the end-to-end tests need" >&2
    echo "Odoo 18 installed for this Python (see README.md, 'Running without Docker')." >&2
    echo "$odoo_version" >&2
    exit 1
fi
case "$odoo_version" in
    18.0*) echo "Odoo $odoo_version" ;;
    *) echo "ERROR: Odoo 18.0 is needed, $PYTHON imports Odoo $odoo_version" >&2; exit 1 ;;
esac

step "Python dependencies"
if [ "${MES_TEST_DEPENDENCIES:-}" = "image" ]; then
    # The compose file's test image holds them (OCA addons beside the image's Odoo):
    # this checkout's package only, without fetching anything.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
else
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements.txt -e ".[test]"
fi

step "Lint"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
"$PYTHON" -m pylint --rcfile=.pylintrc --disable=missing-readme addons/*

step "pytest: mes_connector"
"$PYTHON" -m pytest -q -p no:cacheprovider tests --ignore=tests/e2e

DB="mes_ci_$(date +%Y%m%d%H%M%S)_$$"
LOG=$(mktemp -t mes-odoo-tests-XXXX.log)
cleanup() { dropdb --if-exists "$DB" 2>/dev/null || true; }
trap cleanup EXIT

step "Odoo tests on a new database $DB (with demo data)"
set +e
(cd / && "$PYTHON" -m odoo --db_host="$PGHOST" --db_port="$PGPORT" --db_user="$PGUSER" \
    --addons-path="$REPO/addons" -d "$DB" -i "$(IFS=,; echo "${ADDONS[*]}")" \
    --test-enable --test-tags "$(printf '/%s,' "${ADDONS[@]}" | sed 's/,$//')" \
    --http-interface=127.0.0.1 --http-port="${ODOO_TEST_PORT:-8169}" \
    --stop-after-init --log-level=test) >"$LOG" 2>&1
rc=$?
set -e
grep -E "odoo\.(addons\.[a-z_]+\.tests|tests\.(result|stats))|ERROR|FAIL" "$LOG" | grep -v "Starting " | tail -n 60 || true
if [ $rc -ne 0 ] || grep -qE "(ERROR|CRITICAL) .*(odoo\.tests|odoo\.modules\.loading|odoo\.addons\.[a-z_]+\.tests)" "$LOG"; then
    echo "ERROR: Odoo tests failed (exit $rc); full log: $LOG" >&2
    exit 1
fi
if grep -E "odoo\.addons\.[a-z_]+\.tests[a-z_.]*: skipped " "$LOG"; then
    # A browser test skipped (no chromium, no websocket-client) is a test not run.
    echo "ERROR: Odoo tests were skipped; full log: $LOG" >&2
    exit 1
fi
if ! grep -qE "odoo.tests.result: 0 failed, 0 error\(s\) of [1-9][0-9]* tests" "$LOG"; then
    echo "ERROR: no Odoo test result found; full log: $LOG" >&2
    exit 1
fi

step "End-to-end: Odoo and the MES simulator as servers on 127.0.0.1"
MES_E2E_DB="$DB" "$PYTHON" -m pytest -q -p no:cacheprovider tests/e2e

step "All tests passed"
