"""The access matrix of the suite: every group x every model and public method, two companies.

A row says who may do one thing (``allowed``: kinds of users) and how to try it on a record
of a company. Each row is tried by every kind of user of both companies, on the records of
both companies: it must work for an allowed user on a record of the user's company and be
refused with an AccessError for everyone else. A completeness check makes sure that every
public method the suite defines has a row, so a new method without a guard (or without a
row) fails the test.
"""

import inspect

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import new_test_user

# Methods every model has, tried through the CRUD rows of each model.
FRAMEWORK = {"create", "write", "unlink", "init", "copy", "read", "search", "name_create"}


class _Undo(Exception):
    """Rolls back what a try did."""


class Row:
    """``call(case, env, company_key)`` does the thing as ``env``'s user on that company's
    record; ``allowed`` are the user kinds that may; ``own_company_only`` says whether an
    allowed user is refused on another company's record (False for things without a
    company, such as a user's own wizard)."""

    def __init__(self, model, what, allowed, call, own_company_only=True):
        self.model, self.what, self.allowed, self.call = model, what, set(allowed), call
        self.own_company_only = own_company_only

    def __repr__(self):
        return f"{self.model}.{self.what}"


class AccessMatrixMixin:
    """Users of each kind in two companies, and the check of a matrix of rows."""

    # kind -> groups (comma-separated xml ids)
    USER_KINDS = {
        "employee": "base.group_user",
        "mrp_user": "mrp.group_mrp_user",
        "planner": "mes_base.group_mes_user",
        "manager": "mes_base.group_mes_manager",
    }
    # Addons whose public methods the completeness check covers.
    ADDONS = ("mes_base",)

    @classmethod
    def _setup_companies(cls):
        cls.companies = {
            "c1": cls.env.company,
            "c2": cls.env["res.company"].create({"name": "Second plant"}),
        }
        cls.users = {}
        for key, company in cls.companies.items():
            for kind, groups in cls.USER_KINDS.items():
                cls.users[(kind, key)] = new_test_user(
                    cls.env,
                    f"acl_{kind}_{key}",
                    groups=groups,
                    company_id=company.id,
                    company_ids=[Command.set(company.ids)],
                )

    def _env_of(self, kind, key):
        user = self.users[(kind, key)]
        return self.env(
            user=user, context=dict(self.env.context, allowed_company_ids=user.company_ids.ids)
        )

    def _try(self, row, kind, user_company, record_company):
        """True when done, False when refused by an AccessError; anything else fails."""
        env = self._env_of(kind, user_company)
        try:
            with self.env.cr.savepoint():
                row.call(self, env, record_company)
                env.flush_all()
                raise _Undo  # every try starts from the same data
        except _Undo:
            return True
        except AccessError:
            return False
        finally:
            env.invalidate_all()
            self.env.invalidate_all()

    def assertMatrix(self, rows):
        failures = []
        for row in rows:
            for kind in self.USER_KINDS:
                for user_company in self.companies:
                    for record_company in self.companies:
                        expected = kind in row.allowed and (
                            record_company == user_company or not row.own_company_only
                        )
                        try:
                            done = self._try(row, kind, user_company, record_company)
                        except Exception as err:
                            failures.append(
                                f"{row!r} by {kind} of {user_company} on {record_company}: "
                                f"{type(err).__name__}: {err}"
                            )
                            continue
                        if done != expected:
                            failures.append(
                                f"{row!r} by {kind} of {user_company} on {record_company}: "
                                f"{'done' if done else 'refused'}, expected "
                                f"{'done' if expected else 'refused'}"
                            )
        self.assertFalse(failures, "\n" + "\n".join(failures))

    def assertEveryPublicMethodCovered(self, rows):
        """Every public method the suite's addons define on a model has a row."""
        covered = {(row.model, row.what) for row in rows}
        missing = []
        suite = tuple(f"odoo.addons.{addon}." for addon in self.ADDONS)
        for name in self.env.registry:
            mro = type(self.env[name]).__mro__
            # Overrides of Odoo's own methods keep Odoo's checks: only new methods need a row.
            standard = {
                attr
                for cls in mro
                if not getattr(cls, "__module__", "").startswith(("odoo.addons.mes_",))
                for attr in vars(cls)
            }
            for cls in mro:
                if not getattr(cls, "__module__", "").startswith(suite):
                    continue
                for attr, value in vars(cls).items():
                    if (
                        attr.startswith("_")
                        or attr in FRAMEWORK
                        or not inspect.isfunction(value)
                        or (name, attr) in covered
                        or attr in standard
                    ):
                        continue
                    missing.append(f"{name}.{attr}")
        self.assertFalse(sorted(set(missing)), "public methods without an access row")
