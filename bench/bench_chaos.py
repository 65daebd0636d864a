"""The chaos test of the queue, bigger: 200 orders by default, and its figures.

Runs ``tests/e2e/test_chaos.py`` (a shift delivered 1-3 times per event, shuffled,
as singles and overlapping batches from 6 clients, Odoo in worker mode behind nginx
killed with -9 during delivery and while the queue drains) with ``MES_CHAOS_ORDERS``
orders, and prints what it measured: requests, resends, delivery time, time to post
everything and events per second. The run fails as the test does if anything is lost,
doubled, in error or different from the simulator's totals.

    python3 bench/bench_chaos.py                 # 200 orders
    python3 bench/bench_chaos.py --orders 50 --db mes_bench

Needs what the end-to-end tests need (Odoo 18, PostgreSQL, nginx). Without --db a
database is created for the run and dropped afterwards.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--db", help="an existing database with the suite and its demo data")
    args = parser.parse_args()
    env = dict(os.environ, MES_CHAOS_ORDERS=str(args.orders))
    if args.db:
        env["MES_E2E_DB"] = args.db
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
    return subprocess.call([*command, "tests/e2e/test_chaos.py"], cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
