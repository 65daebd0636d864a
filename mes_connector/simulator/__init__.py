"""A stand-in for the legacy MES: receives orders over HTTP and reports production back.

Run it with ``python3 -m mes_connector.simulator --help``.
"""

from .server import SimulatorServer
from .store import Store

__all__ = ["SimulatorServer", "Store"]
