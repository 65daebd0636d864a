from . import mes_backend_key_wizard, mes_message_cancel_wizard
