from . import (
    maintenance_equipment,
    maintenance_request,
    maintenance_stage,
    mes_backend,
    mes_dashboard,
    mes_event_processor,
    mes_mapping,
    mes_message,
    mrp_workcenter,
    mrp_workcenter_productivity,
)
