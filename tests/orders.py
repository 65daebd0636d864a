"""Valid order documents for tests: one place that knows what a typical order looks like."""

from mes_connector.messages import Component, Operation, OrderExport, Product


def order_document(**overrides):
    """A valid ``mes.order/1`` dict (a table with legs, one operation); fields overridable."""
    values = {
        "order_id": "WH/MO/00001",
        "revision": 1,
        "product": Product(code="FG-TABLE", name="Table", tracking="lot"),
        "quantity": 5.0,
        "uom": "Units",
        "components": (Component(Product(code="C-LEG"), 20.0, "Units", operation_sequence=10),),
        "operations": (Operation(10, "Assembly", "WC-ASM", 30.0),),
    }
    values.update(overrides)
    return OrderExport(**values).to_dict()
