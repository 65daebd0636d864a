def migrate(cr, version):
    """Cause code and value in columns of their own, read once from the ``code: value``
    text that messages and causes held before (``waiting``: the text starts with what is
    awaited; ``waited_too_long``: with its own code, then what was awaited)."""
    if not version:
        return
    # A lane's job commits each message it applies (data/queue_job_data.xml, noupdate).
    cr.execute(
        """
        UPDATE queue_job_function f SET allow_commit = true
          FROM ir_model m
         WHERE m.id = f.model_id AND m.model = 'mes.message' AND f.method = '_run_lane'
        """
    )
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
        r"""
        UPDATE mes_error_cause
           SET cause_code = CASE
                   WHEN error_code = 'waited_too_long'
                        THEN COALESCE(substring(name from '^[^:]*: ([^:]*)'), error_code)
                   WHEN error_code = 'waiting'
                        THEN substring(name from '^([^:]*)')
                   ELSE error_code
               END,
               cause_value = CASE
                   WHEN error_code = 'waited_too_long'
                        THEN substring(name from '^[^:]*: [^:]*: (.*)$')
                   ELSE substring(name from '^[^:]*: (.*)$')
               END
         WHERE cause_code IS NULL
        """
    )
