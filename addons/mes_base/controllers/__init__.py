from . import intake, monitoring
