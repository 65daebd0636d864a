from . import mes_reconciliation_export
