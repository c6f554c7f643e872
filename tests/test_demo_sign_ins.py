"""The demo's sign-ins: the story's people can sign in to the pages with the passwords
the demo prints, each seeing what their role and customer allow."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import func, select

from etomcrm.db import session_scope
from etomcrm.demo.scenario import run_demo
from etomcrm.demo.sign_ins import ensure_sign_ins
from etomcrm.security.models import UserAccount
from tests.test_pages_portal import sign_in


def test_the_demo_sign_ins_open_the_pages_for_katrin_and_the_staff(
    client: TestClient,
) -> None:
    # given the demo's scenario loaded (BMW, not yet Autohaus Schmidt: its part of the
    # story has not run)
    summary = run_demo(Console(file=io.StringIO(), width=120))

    # when the demo makes its sign-ins
    with session_scope() as session:
        people = {p.username: p for p in ensure_sign_ins(session)}

    # then Katrin signs in with the printed password and lands on BMW's network
    assert "thomas.schmidt" not in people
    katrin = people["katrin.weber"]
    answer = sign_in(client, "katrin.weber", katrin.password)
    assert answer.status_code == 303, answer.text
    network = client.get(f"/ui/customers/{summary.customer_id}/network")
    assert network.status_code == 200 and "BMW" in network.text
    # and a member of staff signs in too
    client.cookies.clear()
    assert sign_in(client, "olaf.berger", people["olaf.berger"].password).status_code == 303

    # when the demo runs again, it prints the same passwords and makes nobody twice
    with session_scope() as session:
        again = {p.username: p.password for p in ensure_sign_ins(session)}
        users = session.scalar(select(func.count()).select_from(UserAccount))
    assert again == {name: p.password for name, p in people.items()}
    assert users == len(people)
    # and the passwords differ per person, none of them written in the code
    assert len(set(again.values())) == len(again)
