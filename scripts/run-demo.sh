#!/usr/bin/env bash
# Starts the suite with its demo plant and the MES simulator, without Docker:
# Odoo on http://127.0.0.1:8069 (admin / admin) and the simulator on :8070.
# Confirm a manufacturing order: the simulator receives it, "runs" it for
# SIM_RUN_SECONDS and reports the production back. Ctrl-C stops both.
#
# Needs Odoo 18 importable by python3 and PostgreSQL (PG* variables, default
# 127.0.0.1:5432, user postgres). The database is created on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
PYTHON=${PYTHON:-python3}
DB=${MES_DEMO_DB:-mes_demo}
export ODOO_QUEUE_JOB_CHANNELS=${ODOO_QUEUE_JOB_CHANNELS:-root:4}
ODOO_PORT=${ODOO_PORT:-8069}
SIM_PORT=${SIM_PORT:-8070}
SIM_RUN_SECONDS=${SIM_RUN_SECONDS:-20}
STATE_DIR=${MES_DEMO_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/mes-demo}

if ! (cd / && "$PYTHON" -c 'import odoo') 2>/dev/null; then
    echo "ERROR: $PYTHON cannot import odoo: install Odoo 18 first (README.md)." >&2
    exit 1
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
mkdir -p "$STATE_DIR"

odoo=("$PYTHON" -m odoo --db_host="$PGHOST" --db_port="$PGPORT" --db_user="$PGUSER"
      --addons-path="$REPO/addons" --data-dir="$STATE_DIR/filestore" -d "$DB")
if ! psql -d "$DB" -tAc "select 1 from ir_module_module where name='mes_base' and state='installed'" 2>/dev/null | grep -q 1; then
    echo "Creating database $DB with the demo plant (about a minute)..."
    (cd / && "${odoo[@]}" -i mes_base,mes_reconciliation,mes_maintenance,mes_quality --stop-after-init --log-level=warn --http-port="$ODOO_PORT")
fi

# The demo backend calls the simulator where it runs (SIM_PORT); changed as Odoo's
# superuser, the demo key goes with it.
SIM_URL="http://127.0.0.1:$SIM_PORT"
if [ "$(psql -d "$DB" -tAc "select base_url from mes_backend where code='SIM'")" != "$SIM_URL" ]; then
    echo "env['mes.backend'].sudo().search([('code', '=', 'SIM')]).write({'base_url': '$SIM_URL'}); env.cr.commit()" \
        | (cd / && "${odoo[@]:0:3}" shell "${odoo[@]:3}" --no-http --log-level=warn) >/dev/null
fi

# The demo backend talks to the simulator with these demo keys (never use them in production).
MES_SIMULATOR_API_KEY=demo-odoo-to-mes-key MES_ODOO_API_KEY=demo-mes-to-odoo-key \
    "$PYTHON" -m mes_connector.simulator --port "$SIM_PORT" --db "$STATE_DIR/simulator.sqlite" \
    --odoo-url "http://127.0.0.1:$ODOO_PORT" --backend SIM --auto-complete "$SIM_RUN_SECONDS" \
    --lots PH-10=PH-2611-A,PH-2611-B --lots MB-41=MB-2611-A,MB-2611-B \
    --shift-mode --operators MES1001,MES1002 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT

echo "Odoo: http://127.0.0.1:$ODOO_PORT (admin / admin)   MES simulator: http://127.0.0.1:$SIM_PORT"
cd / && "${odoo[@]}" --http-interface="${ODOO_INTERFACE:-127.0.0.1}" \
    --http-port="$ODOO_PORT" --load=base,web,queue_job --workers=0
