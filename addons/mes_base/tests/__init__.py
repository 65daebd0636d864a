import odoo.tests.common as _odoo_test_common

# queue_job's test helpers register themselves in SETATTR_SOURCES, which Odoo 18
# cores older than mid-2025 do not have; an empty registry is what they expect.
if not hasattr(_odoo_test_common, "SETATTR_SOURCES"):
    _odoo_test_common.SETATTR_SOURCES = {}

from . import (
    test_access,
    test_backend_admin,
    test_dashboard,
    test_dashboard_shop_floor,
    test_dashboard_tour,
    test_error_cause,
    test_events,
    test_export,
    test_hostile_intake,
    test_intake,
    test_master_data,
    test_master_data_edges,
    test_monitoring,
    test_operators,
    test_order_status,
    test_processing,
    test_rework,
    test_security,
    test_serial_output,
)
