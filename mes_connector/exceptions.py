"""Errors of the MES interface, split by what the caller should do next."""


class MesError(Exception):
    """Base class of every error this package raises."""


class MessageValidationError(MesError, ValueError):
    """A message does not follow its schema: the sender must fix the data.

    ``errors`` lists one :class:`~mes_connector.validation.FieldError` per
    problem, each naming the field, the value found and what was expected.
    """

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class MesPermanentError(MesError):
    """The MES refused the call for a reason a retry will not change.

    Someone has to fix the data or the configuration first.
    """

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class MesRejectedError(MesPermanentError):
    """The MES answered 4xx to the content of a call; ``reason`` is the MES's own text."""


class MesAuthError(MesPermanentError):
    """The MES refused our credentials (401/403): fix the backend configuration."""


class MesTransientError(MesError):
    """The MES could not be reached or was not able to answer: try again later.

    ``retry_after`` is the delay in seconds the MES asked for, if it did.
    """

    def __init__(self, message, status=None, retry_after=None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
