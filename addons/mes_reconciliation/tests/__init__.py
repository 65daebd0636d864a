import odoo.tests.common as _odoo_test_common

# queue_job's test helpers need SETATTR_SOURCES, missing from older Odoo 18 cores.
if not hasattr(_odoo_test_common, "SETATTR_SOURCES"):
    _odoo_test_common.SETATTR_SOURCES = {}

from . import (
    test_access,
    test_labor_reconciliation,
    test_reconciliation,
    test_reconciliation_tour,
    test_serial_reconciliation,
    test_units_edges,
)
