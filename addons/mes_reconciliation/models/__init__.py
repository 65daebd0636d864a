from . import (
    mes_backend,
    mes_period_close,
    mes_period_close_check,
    mes_reconciliation,
    mes_reconciliation_line,
)
