"""A flow survives the death of the process running it: SIGKILL mid-fulfillment, restart,
and the order completes with no outside effect repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from etomcrm.customer_interface.models import CommunicationMessageRow
from etomcrm.db import session_scope
from etomcrm.flows.models import TaskFlowRow
from etomcrm.network.models import NetworkServiceOrderRow
from tests import factories
from tests.test_fulfillment_flow import ORDERING, access_offering, contractable_customer, order_body
from tests.test_serve import _etomcrm, _free_port


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "etomcrm", "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
    )


def _until(check: Any, seconds: float, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_an_order_completes_after_the_server_is_killed_mid_fulfillment(
    db_url: str, tmp_path: Path
) -> None:
    # given the embedded service (API and flows in one process), with a network whose
    # activations take a few seconds
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "ETOMCRM_DATABASE_URL": db_url,
        "ETOMCRM_MESSAGE_DIR": str(tmp_path / "messages"),
        "ETOMCRM_NETWORK_DAY_SECONDS": "0.15",
        "ETOMCRM_NETWORK_LATE_RATE": "0",
        "ETOMCRM_NETWORK_FAILURE_RATE": "0",
        "ETOMCRM_NETWORK_UNSERVICEABLE_RATE": "0",
        "ETOMCRM_HUB_DELIVERY_INTERVAL_SECONDS": "0.2",
    }
    token = _etomcrm("apikey", "create", "ops", "--role", "admin", env=env).strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    port = _free_port()
    server = _start(env, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        client = cast(TestClient, httpx.Client(base_url=base, timeout=10))
        _until(lambda: client.get("/health").status_code == 200, 60, log)
        customer = contractable_customer(client, headers)
        sites = [factories.site(client, headers, customer["id"], c) for c in ("Ulm", "Hof", "Bonn")]
        offering = access_offering(client, headers)
        order = factories.post(
            client,
            f"{ORDERING}/productOrder",
            order_body(customer["id"], offering, [s["id"] for s in sites]),
            headers,
        )

        # when the service orders are out and the flow waits for the network, the
        # process is killed
        def issued() -> bool:
            body = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=headers).json()
            return all("serviceOrder" in item for item in body["productOrderItem"])

        _until(issued, 60, log)
        state = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=headers).json()
        assert state["state"] == "inProgress"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)

        # then, after a restart, the order completes
        server = _start(env, port, log)
        _until(lambda: client.get("/health").status_code == 200, 60, log)

        def finished() -> dict[str, Any] | None:
            body = client.get(f"{ORDERING}/productOrder/{order['id']}", headers=headers).json()
            return body if body["state"] in ("completed", "partial", "failed") else None

        done = _until(finished, 120, log)
        assert done["state"] == "completed"
        _until(lambda: len(list((tmp_path / "messages").glob("*.eml"))) >= 2, 30, log)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # and nothing with an outside effect happened twice: one service order per site, one
    # confirmation and one completion message, each step recorded once
    with session_scope() as session:
        service_orders = session.scalar(select(func.count()).select_from(NetworkServiceOrderRow))
        subjects = list(
            session.scalars(select(CommunicationMessageRow.body["subject"].as_string()))
        )
        steps = list(session.scalars(select(TaskFlowRow.name)))
    assert service_orders == 3
    assert subjects.count("Your order is confirmed") == 1
    assert subjects.count("Your service is active") == 1
    assert steps.count("3.5.5 Complete order") == 1
    assert steps.count("3.5.3 Accept and issue orders") == 2  # accepted, then issued
    # (a ``.part`` file is a write the kill cut short, never a message delivered)
    files = [p.read_text() for p in (tmp_path / "messages").glob("*.eml")]
    assert sum("Your order is confirmed" in text for text in files) == 1
