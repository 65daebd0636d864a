"""Row locks of the suite: taken at once or not at all, never waited for.

A job that finds a row locked by another worker tries again shortly (queue_job), and
bookkeeping that finds it locked leaves it to the worker holding it: no transaction of
the suite waits on another's rows, so none deadlocks on them.
"""

from psycopg2 import errors as pg_errors

from odoo.addons.queue_job.exception import RetryableJobError


def try_lock(records):
    """Lock the rows of ``records`` for this transaction if no one holds them: True if
    they are locked now, False if another transaction has one of them."""
    if not records:
        return True
    try:
        with records.env.cr.savepoint(flush=False):
            # NO KEY UPDATE: what an UPDATE takes. It keeps out every other writer and
            # locker of the row, not the transactions inserting rows that refer to it
            # (their foreign key check shares its key).
            records.env.cr.execute(
                f'SELECT id FROM "{records._table}" WHERE id IN %s FOR NO KEY UPDATE NOWAIT',
                (tuple(records.ids),),
            )
    except pg_errors.LockNotAvailable:
        return False
    return True


def lock_or_retry(records, seconds=2):
    """Lock the rows of ``records``, or have the running job tried again in ``seconds``
    (not counted as a failed try: another worker is on them)."""
    if not try_lock(records):
        raise RetryableJobError(
            f"{records._name} {records.ids} is being updated by another worker",
            seconds=seconds,
            ignore_retry=True,
        )
