from . import mes_backend, mes_message, mrp_production, queue_job
