"""The demo's sign-ins: the people of the story, so that the pages can be tried on its
data (staff workspace and customer portal at ``/ui/``).

Passwords are not fixed in the code (a demo database reachable on a network would then
be open to anyone who read it): each is derived from a random secret this installation
makes on the first demo, so a second run prints the same ones again without storing
them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.customer_interface.models import CustomerRow
from etomcrm.demo.billing_story import SCHMIDT
from etomcrm.demo.scenario import CUSTOMER_NAME
from etomcrm.security.models import UserAccount
from etomcrm.security.service import Role, create_user, installation_secret

SECRET_NAME = "demo-sign-ins"


@dataclass(frozen=True)
class DemoSignIn:
    username: str
    name: str
    role: Role
    customer: str | None  # the customer whose portal user this is
    password: str = ""


PEOPLE: tuple[DemoSignIn, ...] = (
    DemoSignIn(
        "katrin.weber", "Katrin Weber (BMW AG, dealer network IT)", Role.CUSTOMER, CUSTOMER_NAME
    ),
    DemoSignIn("thomas.schmidt", "Thomas Schmidt (Autohaus Schmidt GmbH)", Role.CUSTOMER, SCHMIDT),
    DemoSignIn("anna.schmidt", "Anna Schmidt (sales)", Role.SALES, None),
    DemoSignIn("olaf.berger", "Olaf Berger (order management)", Role.ORDER_MANAGER, None),
    DemoSignIn("lena.vogt", "Lena Vogt (support)", Role.SUPPORT, None),
    DemoSignIn("jonas.keller", "Jonas Keller (SLA management)", Role.SLA_MANAGER, None),
    DemoSignIn("paula.richter", "Paula Richter (billing)", Role.BILLING, None),
)


def demo_password(secret: str, username: str) -> str:
    """The sign-in's password: 20 characters derived from the installation's secret."""
    digest = hmac.new(secret.encode(), f"demo-sign-in:{username}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:20]


def ensure_sign_ins(session: Session) -> list[DemoSignIn]:
    """Create the story's sign-ins that are missing (for the customers the demo has
    loaded) and return every one with its password."""
    secret = installation_secret(session, SECRET_NAME)
    names = [p.customer for p in PEOPLE if p.customer]
    customers = {
        str(name): str(id_)
        for name, id_ in session.execute(
            select(CustomerRow.name, CustomerRow.id).where(CustomerRow.name.in_(names))
        )
    }
    existing = set(
        session.scalars(
            select(UserAccount.username).where(
                UserAccount.username.in_([p.username for p in PEOPLE])
            )
        )
    )
    made: list[DemoSignIn] = []
    for person in PEOPLE:
        customer_id = customers.get(person.customer) if person.customer else None
        if person.customer and customer_id is None:
            continue  # that part of the story has not run: no portal for it yet
        password = demo_password(secret, person.username)
        if person.username not in existing:
            create_user(session, person.username, password, person.role.value, customer_id)
        made.append(
            DemoSignIn(person.username, person.name, person.role, person.customer, password)
        )
    return made
