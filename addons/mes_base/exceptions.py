"""Why a message could not be applied: a person must act, or it must wait."""


class MesDataError(Exception):
    """The message cannot be applied as it is: fix data or mapping, then retry.

    ``code`` identifies the cause (messages with the same code and value have the
    same fix); the text names the field and the value and says what to do.
    """

    def __init__(self, code, message, value=None):
        super().__init__(message)
        self.code = code
        # The value at fault (an unmapped code, a lot...): messages with the same code and
        # value have one cause, cleared by one fix.
        self.value = value


class MesConcurrentDelivery(Exception):
    """Another request is storing the same event at this very moment: its row is not
    visible yet. Nothing of this request is kept; the MES is told to send it again (then
    it is answered as the duplicate, or the correction, that it is)."""


class MesWaiting(Exception):
    """Something the message needs is not there yet (its order, an earlier message,
    a lot): it is retried later, and becomes an error after the backend's timeout.

    ``code`` says what is awaited (``unknown_order``, ``unknown_lot``...) and ``value``
    which one: messages waiting for the same thing share a cause.
    """

    def __init__(self, code, message, value=None):
        super().__init__(message)
        self.code = code
        self.value = value
