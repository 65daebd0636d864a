"""The HTTP clients against the simulator and scripted servers: acks and error classification."""

import time
import traceback

import pytest
import requests

from mes_connector import (
    MesAuthError,
    MesPermanentError,
    MesRejectedError,
    MesTransientError,
    order_idempotency_key,
)
from mes_connector.client import MesClient, OdooIntakeClient, OrderAck

KEY = order_idempotency_key("test-db/SIM", "WH/MO/00001", 1)


def _full_text(error):
    """Everything a log would show of an error: message, repr, causes and traceback."""
    return "".join(traceback.format_exception(error)) + repr(error)


def _control(sim, **switches):
    response = requests.post(f"{sim.url}/api/v1/control", json=switches, timeout=5)
    response.raise_for_status()
    return response.json()


# acknowledgements


def test_health(mes_client):
    assert mes_client.health() == {"status": "ok"}


def test_send_order_created_then_duplicate(mes_client, simulator, make_order):
    order = make_order()
    first = mes_client.send_order(order, KEY)
    assert isinstance(first, OrderAck)
    assert first.duplicate is False
    assert first.mes_order_id == "MES-000001"
    assert first.body == {"status": "created", "mes_order_id": "MES-000001"}

    again = mes_client.send_order(order, KEY)
    assert again.duplicate is True
    assert again.mes_order_id == first.mes_order_id
    assert again.body["status"] == "duplicate"
    assert len(simulator.store.orders()) == 1


def test_new_revision_of_an_order_keeps_its_mes_id(mes_client, simulator, make_order):
    first = mes_client.send_order(make_order(revision=1), KEY)
    key2 = order_idempotency_key("test-db/SIM", "WH/MO/00001", 2)
    second = mes_client.send_order(make_order(revision=2, quantity=8.0, action="change"), key2)
    assert second.duplicate is False
    assert second.mes_order_id == first.mes_order_id
    stored = simulator.store.order(first.mes_order_id)
    assert stored["revision"] == 2
    assert stored["quantity"] == 8.0


def test_different_orders_get_different_mes_ids(mes_client, make_order):
    one = mes_client.send_order(make_order("WH/MO/00001"), KEY)
    two = mes_client.send_order(
        make_order("WH/MO/00002"), order_idempotency_key("test-db/SIM", "WH/MO/00002", 1)
    )
    assert one.mes_order_id != two.mes_order_id


def test_headers_sent_to_the_mes(stub_server, make_order):
    stub_server.body = {"status": "created", "mes_order_id": "X-1"}
    client = MesClient(stub_server.url + "/", api_key="k-123", timeout=(2, 5))
    ack = client.send_order(make_order(), KEY)
    assert ack == OrderAck("X-1", False, {"status": "created", "mes_order_id": "X-1"})
    [request] = stub_server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/v1/orders"  # trailing slash of base_url dropped
    assert request["headers"]["Authorization"] == "Bearer k-123"
    assert request["headers"]["Idempotency-Key"] == KEY
    assert request["json"] == make_order()


def test_send_order_needs_a_key(mes_client, simulator, make_order):
    with pytest.raises(ValueError, match="idempotency_key is required"):
        mes_client.send_order(make_order(), "")
    assert simulator.store.orders() == []


# permanent errors


@pytest.mark.parametrize("api_key", ["wrong-key", None])
def test_wrong_api_key_raises_auth_error(simulator, make_order, api_key):
    client = MesClient(simulator.url, api_key=api_key, timeout=(2, 5))
    with pytest.raises(MesAuthError) as info:
        client.send_order(make_order(), KEY)
    assert info.value.status == 401
    assert isinstance(info.value, MesPermanentError)
    assert not isinstance(info.value, MesTransientError)
    assert "API key" in info.value.reason
    assert simulator.store.orders() == []


def test_invalid_order_raises_rejected_error_naming_the_field(mes_client, simulator, make_order):
    with pytest.raises(MesRejectedError) as info:
        mes_client.send_order(make_order(quantity=-1.0), KEY)
    error = info.value
    assert error.status == 422
    assert "quantity" in error.reason
    assert "must be greater than 0" in error.reason
    assert "quantity" in str(error)
    assert isinstance(error, MesPermanentError)
    assert not isinstance(error, MesAuthError)
    assert simulator.store.orders() == []


def test_rejection_with_plain_text_body(stub_server, make_order):
    stub_server.status = 409
    stub_server.body = b"order is locked"
    client = MesClient(stub_server.url, timeout=(2, 5))
    with pytest.raises(MesRejectedError) as info:
        client.send_order(make_order(), KEY)
    assert info.value.status == 409
    assert info.value.reason == "order is locked"


# transient errors


def test_mes_down_raises_transient_error(mes_client, simulator, make_order):
    _control(simulator, down=True)
    with pytest.raises(MesTransientError) as info:
        mes_client.send_order(make_order(), KEY)
    assert info.value.status == 503
    assert "503" in str(info.value)
    assert simulator.store.orders() == []

    _control(simulator, down=False)
    fresh = MesClient(simulator.url, api_key=simulator.api_key, timeout=(2, 5))
    assert fresh.send_order(make_order(), KEY).duplicate is False


def test_same_client_recovers_after_outage(mes_client, simulator, make_order):
    _control(simulator, down=True)
    with pytest.raises(MesTransientError):
        mes_client.send_order(make_order(), KEY)
    _control(simulator, down=False)
    assert mes_client.send_order(make_order(), KEY).duplicate is False


def test_closed_port_raises_transient_error_quickly(closed_port, make_order):
    client = MesClient(f"http://127.0.0.1:{closed_port}", api_key="k", timeout=(2, 5))
    started = time.monotonic()
    with pytest.raises(MesTransientError, match="not reachable") as info:
        client.send_order(make_order(), KEY)
    assert time.monotonic() - started < 2
    assert info.value.status is None
    assert isinstance(info.value.__cause__, requests.ConnectionError)


def test_slow_server_raises_transient_error(stub_server, make_order):
    stub_server.delay = 5.0  # released when the fixture stops the server
    stub_server.body = {"status": "created", "mes_order_id": "late"}
    client = MesClient(stub_server.url, timeout=(2, 0.2))
    started = time.monotonic()
    with pytest.raises(MesTransientError, match="did not answer in time"):
        client.send_order(make_order(), KEY)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "7", 7),
        (503, "120", 120),
        (503, None, None),
        (429, "Wed, 21 Oct 2026 07:28:00 GMT", None),
        (408, "-5", 0),
    ],
)
def test_busy_answers_are_transient_with_retry_after(
    stub_server, make_order, status, retry_after, expected
):
    stub_server.status = status
    if retry_after is not None:
        stub_server.headers = {"Retry-After": retry_after}
    client = MesClient(stub_server.url, timeout=(2, 5))
    with pytest.raises(MesTransientError) as info:
        client.send_order(make_order(), KEY)
    assert info.value.status == status
    assert info.value.retry_after == expected


@pytest.mark.parametrize(
    "body", [b"<html>gateway</html>", {"status": "created"}, ["MES-1"], {"mes_order_id": ""}]
)
def test_success_answer_without_mes_order_id_is_transient(stub_server, make_order, body):
    stub_server.body = body
    client = MesClient(stub_server.url, timeout=(2, 5))
    with pytest.raises(MesTransientError):
        client.send_order(make_order(), KEY)


# credentials


def test_api_key_never_shown(make_simulator, simulator, stub_server, closed_port, make_order):
    secret = "s3cr3t-api-key-0123456789"
    own = make_simulator(api_key=secret)
    stub_server.delay = 5.0

    def client(url, read_timeout=5.0):
        made = MesClient(url, api_key=secret, timeout=(2, read_timeout))
        assert secret not in repr(made)
        assert secret not in str(made)
        return made

    cases = [
        (MesAuthError, lambda: client(simulator.url).send_order(make_order(), KEY)),
        (MesRejectedError, lambda: client(own.url).send_order(make_order(quantity=-1.0), KEY)),
        (MesTransientError, lambda: client(f"http://127.0.0.1:{closed_port}").health()),
        (MesTransientError, lambda: client(stub_server.url, 0.1).send_order(make_order(), KEY)),
    ]
    for expected, call in cases:
        with pytest.raises(expected) as info:
            call()
        assert secret not in _full_text(info.value)
        assert secret not in str(getattr(info.value, "reason", ""))

    _control(own, down=True)
    with pytest.raises(MesTransientError) as info:
        client(own.url).send_order(make_order(), KEY)
    assert secret not in _full_text(info.value)


def test_repr_shows_the_url(simulator):
    client = MesClient(simulator.url, api_key="abc")
    assert repr(client) == f"<MesClient {simulator.url}>"


@pytest.mark.parametrize(
    "base_url", ["ftp://mes.example", "127.0.0.1:8070", "localhost", "", None, "file:///tmp/x"]
)
def test_base_url_must_be_http(base_url):
    with pytest.raises(ValueError, match="base_url must be an http"):
        MesClient(base_url, api_key="k")


# the client the MES uses to call Odoo


def test_intake_client_posts_event_batches(fake_odoo):
    client = OdooIntakeClient(fake_odoo.url, "SIM", "odoo-key", timeout=(2, 5))
    events = [{"event_id": "E1"}, {"event_id": "E2"}]
    assert client.post_events(events) == [{"status": "accepted"}, {"status": "accepted"}]
    [request] = fake_odoo.requests
    assert request["path"] == "/mes/api/v1/SIM/events"
    assert request["headers"]["Authorization"] == "Bearer odoo-key"
    assert request["json"] == {"events": events}
    assert "odoo-key" not in repr(client)


def test_intake_client_transient_and_auth_errors(fake_odoo):
    client = OdooIntakeClient(fake_odoo.url, "SIM", "odoo-key", timeout=(2, 5))
    fake_odoo.status = 503
    with pytest.raises(MesTransientError) as info:
        client.post_events([{"event_id": "E1"}])
    assert info.value.status == 503
    fake_odoo.status = 403
    with pytest.raises(MesAuthError):
        client.post_events([{"event_id": "E1"}])


def test_intake_client_post_raw_returns_any_status(fake_odoo):
    fake_odoo.status = 400
    fake_odoo.body = {"error": "bad"}
    client = OdooIntakeClient(fake_odoo.url, "SIM", "odoo-key", timeout=(2, 5))
    assert client.post_raw(b"not json") == (400, {"error": "bad"})
    assert fake_odoo.requests[0]["json"] == b"not json"


def test_resource_status_recorded_once_per_key(mes_client, simulator):
    answer = mes_client.send_resource_status(
        "LINE 1/A", "blocked", "key-1", reason="MR/0007 Bearing", since="2026-11-20T08:00:00Z"
    )
    assert answer == {"status": "recorded", "resource": "LINE 1/A"}
    # A redelivery of the same status is a duplicate; the MES holds it once.
    assert mes_client.send_resource_status("LINE 1/A", "blocked", "key-1")["status"] == "duplicate"
    resources = simulator.store.resources()
    assert resources["LINE 1/A"]["status"] == "blocked"
    assert resources["LINE 1/A"]["reason"] == "MR/0007 Bearing"
    mes_client.send_resource_status("LINE 1/A", "available", "key-2")
    assert simulator.store.resources()["LINE 1/A"]["status"] == "available"
    assert [r["idempotency_key"] for r in simulator.store.status_receipts()] == ["key-1", "key-2"]


def test_resource_status_must_be_known(mes_client, simulator):
    with pytest.raises(ValueError, match="status must be"):
        mes_client.send_resource_status("L1", "broken", "key-3")
    response = requests.put(
        f"{simulator.url}/api/v1/resources/L1/status",
        json={"status": "broken"},
        headers=mes_client._headers({"Idempotency-Key": "k"}),
        timeout=5,
    )
    assert response.status_code == 400
    assert "status: 'broken'" in response.json()["error"]
    assert "L1" not in simulator.store.resources()
