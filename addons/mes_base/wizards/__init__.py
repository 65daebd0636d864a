from . import mes_backend_key_wizard
