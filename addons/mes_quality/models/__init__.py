from . import (
    mes_backend,
    mes_dashboard,
    mes_event_processor,
    mes_mapping,
    mes_quality_hold,
    qc_inspection,
    stock_lot,
    stock_move_line,
    stock_quant,
)
