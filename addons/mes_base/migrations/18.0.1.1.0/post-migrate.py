from psycopg2 import sql

# Cause code and value read from the ``code: value`` text (``waiting``: the text starts
# with what is awaited; ``waited_too_long``: with its own code, then what was awaited).
SPLIT = r"""
    UPDATE {table}
       SET cause_code = CASE
               WHEN error_code = 'waited_too_long'
                    THEN COALESCE(substring({text} from '^[^:]*: ([^:]*)'), error_code)
               WHEN error_code = 'waiting'
                    THEN substring({text} from '^([^:]*)')
               ELSE error_code
           END,
           cause_value = CASE
               WHEN error_code = 'waited_too_long'
                    THEN substring({text} from '^[^:]*: [^:]*: (.*)$')
               ELSE substring({text} from '^[^:]*: (.*)$')
           END
     WHERE {text} IS NOT NULL AND cause_code IS NULL
"""


def migrate(cr, version):
    """Cause code and value in columns of their own, read once from the text that
    messages and causes held before; lanes' jobs may commit."""
    if not version:
        return
    # A lane's job commits each message it applies (data/queue_job_data.xml, noupdate).
    cr.execute(
        """
        UPDATE queue_job_function f SET allow_commit = true
          FROM ir_model m
         WHERE m.id = f.model_id AND m.model = 'mes.message'
           AND f.method IN ('_run_lane', '_process')
        """
    )
    for table, text in (("mes_message", "error_cause"), ("mes_error_cause", "name")):
        cr.execute(sql.SQL(SPLIT).format(table=sql.Identifier(table), text=sql.Identifier(text)))
