from . import mes_adopt_wizard, mes_backend_key_wizard, mes_message_cancel_wizard
