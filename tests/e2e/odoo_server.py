"""Starts Odoo from a script, as ``odoo-bin`` does, for the multi-process server.

Odoo's prefork server starts its gevent (websocket) process again from its own
script path (``sys.argv[0]``); started as ``python3 -m odoo`` that path is a package
``__main__`` and the child dies at once, so the tests start Odoo through this file.
"""

import os

os.environ["TZ"] = "UTC"

import odoo

if __name__ == "__main__":
    odoo.cli.main()
