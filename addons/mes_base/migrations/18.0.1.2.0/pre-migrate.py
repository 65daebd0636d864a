# Indexes of mes_message that every stored message wrote and no lookup needed (a few
# values each, or a column leading another index), and indexes of columns empty on most
# messages, which Odoo creates again without their empty rows (btree_not_null).
DROPPED = (
    "mes_message__backend_id_index",
    "mes_message__company_id_index",
    "mes_message__direction_index",
    "mes_message__message_type_index",
    "mes_message__state_index",
    "mes_message__mes_order_id_index",
    "mes_message__production_id_index",
    "mes_message__error_code_index",
    "mes_message__cause_code_index",
    "mes_message__error_cause_index",
    "mes_message__job_uuid_index",
)


def migrate(cr, version):
    """Fewer and smaller indexes on the message log (the intake writes each of them)."""
    if not version:
        return
    for name in DROPPED:
        cr.execute(f'DROP INDEX IF EXISTS "{name}"')
