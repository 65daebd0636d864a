def migrate(cr, version):
    """Cause code and value in columns of their own, read once from the ``code: value``
    text that messages and causes held before (``waiting``: the text starts with what is
    awaited; ``waited_too_long``: with its own code, then what was awaited)."""
    if not version:
        return
    cr.execute(
        r"""
        UPDATE mes_message
           SET cause_code = CASE
                   WHEN error_code = 'waited_too_long'
                        THEN COALESCE(substring(error_cause from '^[^:]*: ([^:]*)'), error_code)
                   WHEN error_code = 'waiting'
                        THEN substring(error_cause from '^([^:]*)')
                   ELSE error_code
               END,
               cause_value = CASE
                   WHEN error_code = 'waited_too_long'
                        THEN substring(error_cause from '^[^:]*: [^:]*: (.*)$')
                   ELSE substring(error_cause from '^[^:]*: (.*)$')
               END
         WHERE error_cause IS NOT NULL AND cause_code IS NULL
        """
    )
    cr.execute(
        """
        UPDATE mes_error_cause c
           SET cause_code = m.cause_code, cause_value = m.cause_value
          FROM mes_message m
         WHERE m.error_cause_id = c.id AND c.cause_code IS NULL
        """
    )
