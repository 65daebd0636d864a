from . import mes_backend
from . import mes_message
from . import mrp_production
from . import queue_job
