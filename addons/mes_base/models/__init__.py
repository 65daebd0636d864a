from . import (
    mes_backend,
    mes_event_processor,
    mes_mapping,
    mes_message,
    mrp_production,
    mrp_workcenter,
    mrp_workcenter_productivity,
    mrp_workorder,
    queue_job,
    stock_move_line,
    stock_warehouse,
)
