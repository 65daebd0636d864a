from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Orders reconciled with one line per lot are reconciled again: a lot-tracked
    product now reads as one line with its lots as a breakdown (same totals)."""
    env = api.Environment(cr, SUPERUSER_ID, {})
    cr.execute(
        "SELECT DISTINCT reconciliation_id FROM mes_reconciliation_line"
        " WHERE lot_name IS NOT NULL AND lot_name != ''"
    )
    ids = [row[0] for row in cr.fetchall()]
    records = env["mes.reconciliation"].browse(ids)
    for start in range(0, len(records), 200):
        records[start : start + 200]._recompute()
