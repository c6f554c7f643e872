"""Every form control on every page has a label (issue 11, "keyboard use and labels"):
the pages a customer's user and a member of staff can reach are walked by their links,
signed in, and each control is checked in the HTML, a form sent back with errors
included."""

from __future__ import annotations

from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from fastapi.testclient import TestClient

from tests.test_pages_portal import csrf_of, network, sign_in, user
from tests.test_pages_reports_surveys import survey, with_slas
from tests.test_pages_tickets_bills import _resolved, _ticket_for, billed

# Controls a person never fills in: no label needed.
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}
# Downloads, not pages.
DOCUMENTS = (".pdf", ".xml")
MOST_PAGES = 150


class Controls(HTMLParser):
    """The page's form controls, its labels' targets and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.labelled_ids: set[str] = set()
        self.controls: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []
        self._open_labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "label":
            self._open_labels += 1
            if found.get("for"):
                self.labelled_ids.add(found["for"])
        elif tag == "a" and found.get("href"):
            self.links.append(found["href"])
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and found.get("type", "text") in UNLABELLED_TYPES:
                return
            # A control inside its label is labelled by it.
            self.controls.append((tag, {**found, "_in_label": str(self._open_labels > 0)}))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._open_labels:
            self._open_labels -= 1

    def unlabelled(self) -> list[str]:
        return [
            f"<{tag} name={attrs.get('name')!r} id={attrs.get('id')!r}>"
            for tag, attrs in self.controls
            if attrs["_in_label"] != "True"
            and attrs.get("id", "") not in self.labelled_ids
            and not attrs.get("aria-label")
            and not attrs.get("aria-labelledby")
        ]


def _walk(client: TestClient, who: str, starts: list[str]) -> dict[str, list[str]]:
    """Every page under /ui reachable by links from ``starts`` (at most MOST_PAGES):
    "who path" → the controls on it that have no label."""
    seen: set[str] = set()
    queue = deque(starts)
    found: dict[str, list[str]] = {}
    while queue and len(seen) < MOST_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        page = client.get(path)
        if "text/html" not in page.headers.get("content-type", ""):
            continue
        controls = Controls()
        controls.feed(page.text)
        found[f"{who} {path}"] = controls.unlabelled()
        for href in controls.links:
            target = urldefrag(urljoin(path, href))[0]
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/ui/"):
                continue  # another site, or the API's documents
            if parts.path.endswith(DOCUMENTS) or parts.path.startswith("/ui/static/"):
                continue
            queue.append(target)
    return found


def _with_errors(
    client: TestClient, who: str, path: str, data: dict[str, str]
) -> dict[str, list[str]]:
    """The form at ``path`` sent with bad input: the page that comes back."""
    form = client.get(path)
    answer = client.post(path, data={**data, "csrf_token": csrf_of(form.text)})
    assert answer.status_code == 400, path
    controls = Controls()
    controls.feed(answer.text)
    return {f"{who} {path} (refused)": controls.unlabelled()}


def test_every_form_control_on_every_reachable_page_has_a_label(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given BMW with sites under an SLA, a resolved ticket, two surveys, and a customer
    # with bills, each with a portal user, and a member of staff
    bmw = network(client, admin, 2)
    with_slas(bmw)
    ticket = _ticket_for(client, admin, bmw.customer_id, bmw.site_ids[0])
    _resolved(client, admin, ticket)
    first = survey(bmw.customer_id, "labels-1")
    survey(bmw.customer_id, "labels-2")
    with_bills = billed(1, 2, "Rechnung AG")
    user("katrin.weber", customer_id=bmw.customer_id)
    user("rita.rechnung", customer_id=with_bills.customer_id)
    user("admin.anna", role="admin")
    walked: dict[str, list[str]] = {}
    # when the sign-in page is read, unsigned
    controls = Controls()
    controls.feed(client.get("/ui/sign-in").text)
    walked["/ui/sign-in"] = controls.unlabelled()
    # and BMW's user walks every page she can reach, forms sent back with errors too
    assert sign_in(client, "katrin.weber").status_code == 303
    base = f"/ui/customers/{bmw.customer_id}"
    walked |= _walk(client, "katrin", ["/ui/", f"{base}/tickets/new"])
    walked |= _with_errors(client, "katrin", f"{base}/tickets", {"site": "", "description": ""})
    walked |= _with_errors(client, "katrin", f"{base}/surveys/{first}", {"csat": "9", "nps": ""})
    # and the other customer's user walks hers, a dispute sent back with errors
    client.cookies.clear()
    assert sign_in(client, "rita.rechnung").status_code == 303
    walked |= _walk(client, "rita", ["/ui/"])
    bill = f"/ui/customers/{with_bills.customer_id}/bills/{with_bills.bill_ids[0]}"
    form = client.get(bill)
    refused = client.post(
        f"{bill}/dispute", data={"line": "", "description": "", "csrf_token": csrf_of(form.text)}
    )
    assert refused.status_code == 400
    controls = Controls()
    controls.feed(refused.text)
    walked[f"rita {bill}/dispute (refused)"] = controls.unlabelled()
    # and staff walk the workspace, the Customer 360 and the customers' portal pages
    client.cookies.clear()
    assert sign_in(client, "admin.anna").status_code == 303
    walked |= _walk(
        client,
        "anna",
        [
            "/ui/",
            f"/ui/search?q={bmw.customer_name}",
            f"/ui/customers/{bmw.customer_id}",
            f"/ui/customers/{with_bills.customer_id}",
        ],
    )
    # then many pages were reached, the forms among them, and no control lacks a label
    assert len(walked) >= 40, sorted(walked)
    for who in ("katrin", "anna"):
        for must in (f"{base}/tickets/new", f"{base}/surveys/{first}", f"{base}/tickets/{ticket}"):
            assert f"{who} {must}" in walked, (who, must)
    assert {path: missing for path, missing in walked.items() if missing} == {}
