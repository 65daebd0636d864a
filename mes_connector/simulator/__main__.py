"""Command line of the MES simulator."""

import argparse
import logging
import os
import signal
import threading

from .server import ANSWER_FORMATS, REPORT_FORMATS, SimulatorServer
from .store import Store


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m mes_connector.simulator",
        description="Stand-in for a legacy MES: receives orders and master data, reports "
        "production to Odoo.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8070)
    parser.add_argument(
        "--db", default="mes_simulator.sqlite", help="SQLite file it keeps state in"
    )
    parser.add_argument(
        "--api-key-env",
        default="MES_SIMULATOR_API_KEY",
        help="environment variable holding the key Odoo must send (none: no check)",
    )
    parser.add_argument("--odoo-url", help="Odoo base URL, e.g. http://127.0.0.1:8069")
    parser.add_argument("--backend", default="SIM", help="code of the MES backend in Odoo")
    parser.add_argument(
        "--odoo-api-key-env",
        default="MES_ODOO_API_KEY",
        help="environment variable holding the backend's inbound API key in Odoo",
    )
    parser.add_argument(
        "--odoo-signing-secret-env",
        default="MES_ODOO_SIGNING_SECRET",
        help="environment variable holding the secret to sign requests to Odoo with, when the "
        "backend requires signed requests (unset: requests are not signed)",
    )
    parser.add_argument(
        "--auto-complete",
        type=float,
        metavar="SECONDS",
        help="run every received order on the shop floor after this many seconds and report "
        "all of it (operations, consumption, scrap, downtime, output, completion)",
    )
    parser.add_argument(
        "--lots",
        action="append",
        default=[],
        metavar="CODE=LOT,LOT",
        help="lots the shop floor holds of a lot-tracked component (repeatable)",
    )
    parser.add_argument(
        "--id-prefix",
        default="MES",
        help="start of the MES order ids (and event ids) this simulator hands out",
    )
    parser.add_argument(
        "--report",
        choices=REPORT_FORMATS,
        default="json",
        help="how events go to Odoo: JSON, or a B2MML ProductionPerformance per order, bare "
        "or in its SyncProductionPerformance transaction",
    )
    parser.add_argument(
        "--answer",
        choices=ANSWER_FORMATS,
        default="json",
        help="how orders and master data sent in B2MML are answered: JSON, or the BOD an MES "
        "that speaks B2MML answers with (AcknowledgeProductionSchedule, ConfirmBOD)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse orders that name materials or equipment the MES does not hold as "
        "active master data (POST /api/v1/master-data)",
    )
    parser.add_argument(
        "--shift-mode",
        action="store_true",
        help="run the shop floor as a shift does: every 3rd order over two shifts (a partial "
        "confirmation first), every 4th with a unit sent to rework",
    )
    parser.add_argument(
        "--operators",
        default="",
        metavar="BADGE,BADGE",
        help="badges of the operators named on operation reports (employees' Badge IDs)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    odoo_key = os.environ.get(args.odoo_api_key_env)
    if args.odoo_url and not odoo_key:
        parser.error(f"--odoo-url needs the Odoo API key in ${args.odoo_api_key_env}")
    sim = SimulatorServer(
        host=args.host,
        port=args.port,
        store=Store(args.db, prefix=args.id_prefix),
        api_key=os.environ.get(args.api_key_env),
        odoo_url=args.odoo_url,
        backend_code=args.backend,
        odoo_api_key=odoo_key,
        odoo_signing_secret=os.environ.get(args.odoo_signing_secret_env) or None,
        auto_complete=args.auto_complete,
        lots=dict(_lots(item, parser) for item in args.lots),
        report=args.report,
        strict=args.strict,
        answer=args.answer,
    )
    if args.shift_mode:
        sim.partial_every, sim.rework_every = 3, 4
    sim.operators = tuple(badge for badge in args.operators.split(",") if badge)
    sim.start()
    logging.getLogger(__name__).info("MES simulator listening on %s", sim.url)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    sim.stop()


def _lots(item, parser):
    code, _sep, lots = item.partition("=")
    if not code or not lots:
        parser.error(f"--lots {item!r}: expected CODE=LOT[,LOT...]")
    return code, [lot for lot in lots.split(",") if lot]


if __name__ == "__main__":
    main()
