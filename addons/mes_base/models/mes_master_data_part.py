from odoo import api, models

from .mes_master_data import schedule_master_data_check


class MesMasterDataPart(models.AbstractModel):
    """A line of a record the MES knows (a bill's component, by-product or operation, a
    calendar's attendance): creating, changing or deleting it may change what the MES
    must know of that record."""

    _name = "mes.master.data.part"
    _description = "Part of MES master data"

    def _mes_master_parents(self):
        """(the records whose MES documents include these lines, their kind)"""
        raise NotImplementedError

    def _mes_schedule(self):
        schedule_master_data_check(*self._mes_master_parents())

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._mes_schedule()
        return records

    def write(self, vals):
        self._mes_schedule()  # the record a line leaves, when it moves to another
        res = super().write(vals)
        self._mes_schedule()
        return res

    def unlink(self):
        self._mes_schedule()
        return super().unlink()
