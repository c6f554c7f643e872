"""The BMW Extranet story continued (issue 10): billing on the database the Fulfillment
and assurance stories left.

A second, small customer, Autohaus Schmidt GmbH, orders one site through the same flows
as BMW (with traffic beyond the included volume, and paying by bank transfer). Then the
month of the activation is billed by the Billing flow's bill run (3.8.2 rating, 3.8.3
bills issued and sent with their PDF): BMW's first bill, prorated from each site's
activation, with installation and routers once and the quote's 15 % discount as its own
lines, and the SLA credit of the assurance story. BMW pays by SEPA B2B direct debit
(3.8.5: the pain.008 collection, the bank's camt.054 credit booked). Autohaus Schmidt
pays late: the dunning flow sends a reminder, a notice with a fee and a final notice,
suspends its services through a suspend order on the Fulfillment flow, and resumes them
when its transfer (a camt.053 statement naming the bill) is booked. The month after is
billed too; BMW disputes one line of that bill (3.8.1) and gets a credit note (approved
by a second person when above the approval limit), set off against the bill before the
rest is collected.

The flows' clock (``core.clock.FLOW_CLOCK``) is moved to the first of each following
month for the bill runs and over the dunning deadlines, never slept on, and put back at
the end. A second run finds it all done and only reads it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from dbos import DBOS
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from etomcrm.billing import bills, enquiries
from etomcrm.billing import dunning as dunning_rules
from etomcrm.billing.bank_statements import import_statement
from etomcrm.billing.direct_debit import batch_items, collect
from etomcrm.billing.dunning_models import BillingEnquiryRow
from etomcrm.billing.enquiries import approve_adjustment, dispute_bill, propose_adjustment
from etomcrm.billing.models import AppliedRateRow, CustomerBillRow
from etomcrm.billing.usage import TRAFFIC, Usage, ingest_usage
from etomcrm.bootstrap import bootstrap
from etomcrm.catalog.models import ProductOfferingRow
from etomcrm.core import resources
from etomcrm.core.clock import FLOW_CLOCK
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.models import CustomerRow, GeographicSiteRow
from etomcrm.customer_interface.service import (
    CUSTOMER_KIND,
    GEOGRAPHIC_SITE_KIND,
    ORGANIZATION_KIND,
)
from etomcrm.db import session_scope, utcnow
from etomcrm.demo.scenario import PROVIDER_NAME
from etomcrm.demo.story import (
    ACCESS,
    ANNA,
    BERND,
    FLOW_TIMEOUT_SECONDS,
    StoryStalled,
    _customer_id,
    _flow_state,
    _offerings,
    _order,
    _wait,
    katrin,
    network,
)
from etomcrm.flows import billing as billing_flow
from etomcrm.flows import dunning as dunning_flow
from etomcrm.flows import engine
from etomcrm.flows import fulfillment as fulfillment_flow
from etomcrm.flows.recorder import FlowTrace, flows_of_case
from etomcrm.network.port import use_network
from etomcrm.order_handling.models import ProductOrderRow, ProductRow
from etomcrm.order_handling.service import accept_delivery, order_from_quote
from etomcrm.security.service import Principal, Role
from etomcrm.selling.accounts import BILLING_ACCOUNT_KIND, PAYMENT_METHOD_KIND
from etomcrm.selling.customer_data import complete_customer_data, missing_contract_data
from etomcrm.selling.education import record_education
from etomcrm.selling.feasibility import qualify_sites
from etomcrm.selling.models import BillingAccountRow, PaymentMethodRow, QuoteRow
from etomcrm.selling.quotes import (
    QuoteLine,
    accept_quote,
    approve_quote,
    draft_quote,
    submit_quote,
)

BERLIN = ZoneInfo("Europe/Berlin")
SCHMIDT = "Autohaus Schmidt GmbH"
SCHMIDT_LEGAL = "Autohaus Schmidt GmbH"
SCHMIDT_SITE = "SCHMIDT-REG"
SCHMIDT_VAT_ID = "DE812345608"
SCHMIDT_IBAN = "DE12500105170648489890"
SCHMIDT_ACCOUNT = "Autohaus Schmidt Buchhaltung"
SCHMIDT_ITEMS = (ACCESS, "Managed router", "Installation", "Traffic volume beyond included volume")
SCHMIDT_SLA = "SLA Silver"
SCHMIDT_QUOTE = "Extranet access for Autohaus Schmidt, traffic billed by volume"
# The provider's own account the bank reports on (camt), as the sample statement.
PROVIDER_IBAN = "DE89370400440532013000"
PROVIDER_BIC = "COBADEFFXXX"
# Traffic beyond the included volume at the dealer: a busy first day after activation.
EXTRA_GB = Decimal(40)
USAGE_HOURS = 24
# Billing staff: Paula proposes an adjustment; above the approval limit Tobias approves it
# (four eyes).
PAULA = Principal(id="staff-paula-richter", name="Paula Richter", role=Role.BILLING)
TOBIAS = Principal(id="staff-tobias-frank", name="Tobias Frank", role=Role.BILLING)
DISPUTED_SITE = "BMW-DLR-KOE"
DISPUTE = (
    "The Köln dealer's access was down for repair part of the month; we ask for this "
    "month's access charge of the site to be credited."
)
DUNNING_STEP = timedelta(days=15)


def schmidt(customer_id: str) -> Principal:
    """Thomas Schmidt, owner of the Autohaus, in the customer portal."""
    return Principal(
        id="schmidt-thomas", name="Thomas Schmidt", role=Role.CUSTOMER, customer_id=customer_id
    )


@dataclass
class BillView:
    customer: str
    bill_no: str
    category: str
    period: str
    net: Decimal
    tax: Decimal
    gross: Decimal
    state: str
    pdf: str
    bill_id: str = ""


@dataclass
class BillingSummary:
    months: tuple[str, str] = ("", "")
    bills: list[BillView] = field(default_factory=list)
    first_bill_lines: dict[str, int] = field(default_factory=dict)  # rate type -> lines
    prorated: set[str] = field(default_factory=set)  # recurring charged from activation
    usage_bill: str = ""  # the bill with a usage line, and its line
    credit_bill: str = ""  # the bill that carries the SLA credit
    credit: str = ""
    credit_on_first_bill: bool = False
    collection: str = ""
    dunning: list[str] = field(default_factory=list)
    schmidt_products: str = ""
    enquiry: str = ""
    credit_note: str = ""
    traces: list[FlowTrace] = field(default_factory=list)
    told_before: bool = False


# ----- the clock ----------------------------------------------------------------------


@contextmanager
def _flow_clock() -> Iterator[None]:
    """The flows' clock as it was when the story leaves it."""
    ahead = FLOW_CLOCK.now() - utcnow()
    try:
        yield
    finally:
        FLOW_CLOCK.reset()
        FLOW_CLOCK.advance(ahead)


def _clock_to(moment: datetime) -> None:
    """Move the flows' clock forward to ``moment`` (never back)."""
    ahead = moment - FLOW_CLOCK.now()
    if ahead > timedelta(0):
        FLOW_CLOCK.advance(ahead)


def _morning(day: date) -> datetime:
    """06:00 in Berlin on ``day``, as an aware UTC instant."""
    return datetime.combine(day, time(6), BERLIN).astimezone(UTC)


def _month_after(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


# ----- the second customer ------------------------------------------------------------


def _schmidt_id(session: Session) -> str | None:
    return session.scalar(select(CustomerRow.id).where(CustomerRow.name == SCHMIDT))


def _schmidt_customer() -> tuple[str, str]:
    """Autohaus Schmidt with its one site, its contract data and a bank-transfer account
    (3.4.4), created through the services once; returns (customer, site)."""
    with session_scope() as session:
        customer_id = _schmidt_id(session)
        if customer_id is None:
            organization, _, _ = resources.create(
                session,
                ORGANIZATION_KIND,
                ANNA,
                {
                    "tradingName": SCHMIDT,
                    "name": SCHMIDT_LEGAL,
                    "nameType": "GmbH",
                    "isLegalEntity": True,
                    "organizationType": "company",
                    "status": "validated",
                },
            )
            customer, _, _ = resources.create(
                session,
                CUSTOMER_KIND,
                ANNA,
                {
                    "name": SCHMIDT,
                    "status": "prospect",
                    "statusReason": "A BMW dealer joining the extranet on its own account",
                    "engagedParty": {
                        "id": organization["id"],
                        "@referredType": "Organization",
                        "name": SCHMIDT,
                    },
                    "characteristic": [
                        {"name": "segment", "valueType": "string", "value": "smb"},
                        {"name": "creditScore", "valueType": "integer", "value": 700},
                    ],
                },
            )
            customer_id = str(customer["id"])
        site_id = session.scalar(
            select(GeographicSiteRow.id).where(GeographicSiteRow.owner_customer_id == customer_id)
        )
        if site_id is None:
            site, _, _ = resources.create(
                session,
                GEOGRAPHIC_SITE_KIND,
                ANNA,
                {
                    "code": SCHMIDT_SITE,
                    "name": "Autohaus Schmidt Regensburg",
                    "description": "BMW dealer in Regensburg",
                    "status": "active",
                    "place": [
                        {
                            "@type": "GeographicAddress",
                            "name": "Straubinger Straße 40, 93055 Regensburg",
                            "street1": "Straubinger Straße 40",
                            "postcode": "93055",
                            "city": "Regensburg",
                            "stateOrProvince": "Bayern",
                            "country": "DE",
                        }
                    ],
                    "relatedParty": [
                        {"id": customer_id, "@referredType": "Customer", "role": "customer"}
                    ],
                },
            )
            site_id = str(site["id"])
        if missing_contract_data(session, customer_id):
            complete_customer_data(
                session,
                ANNA,
                customer_id,
                legal_name=SCHMIDT_LEGAL,
                vat_id=SCHMIDT_VAT_ID,
                billing_contact={
                    "emailAddress": "buchhaltung@autohaus-schmidt.example",
                    "name": "Thomas Schmidt",
                    "phoneNumber": "+49 941 555 120",
                },
                billing_address={
                    "street1": "Straubinger Straße 40",
                    "postCode": "93055",
                    "city": "Regensburg",
                    "country": "DE",
                },
            )
        has_account = session.scalar(
            select(BillingAccountRow.id).where(BillingAccountRow.owner_customer_id == customer_id)
        )
        if has_account is None:
            account, _, _ = resources.create(
                session,
                BILLING_ACCOUNT_KIND,
                ANNA,
                {
                    "name": SCHMIDT_ACCOUNT,
                    "relatedParty": [
                        {
                            "id": customer_id,
                            "@referredType": "Customer",
                            "role": "customer",
                            "name": SCHMIDT,
                        }
                    ],
                    "billCycleDay": 1,
                    "currency": "EUR",
                    "billStructure": {"presentationMedia": [{"name": "email"}]},
                },
            )
            resources.create(
                session,
                PAYMENT_METHOD_KIND,
                ANNA,
                {
                    "@type": "bankAccountTransfer",
                    "name": "Bank transfer",
                    "account": [
                        {"id": account["id"], "@referredType": "BillingAccount", "name": SCHMIDT}
                    ],
                    "accountNumber": SCHMIDT_IBAN,
                    "owner": SCHMIDT_LEGAL,
                },
            )
    return customer_id, site_id


def _schmidt_quote(session: Session, customer_id: str) -> JsonDict | None:
    bodies = session.scalars(select(QuoteRow.body).where(QuoteRow.owner_customer_id == customer_id))
    return next(
        (
            dict(b)
            for b in bodies
            if b.get("description") == SCHMIDT_QUOTE and not b.get("supersededBy")
        ),
        None,
    )


def _schmidt_order(customer_id: str, site_id: str) -> str:
    """3.5.1, 3.4.3, 3.4.2: the one site qualified, quoted at list price (approved at
    once), explained and accepted; the flows order, deliver and complete it. Returns the
    order id."""
    with session_scope() as session:
        offerings = _offerings(session)
        quote = _schmidt_quote(session, customer_id)
        if quote is None:
            qualify_sites(
                session,
                ANNA,
                customer_id=customer_id,
                site_ids=[site_id],
                offering_id=offerings[ACCESS],
            )
            quote = draft_quote(
                session,
                ANNA,
                customer_id=customer_id,
                items=[QuoteLine(site_id, offerings[name]) for name in SCHMIDT_ITEMS],
                sla_offering_id=offerings[SCHMIDT_SLA],
                description=SCHMIDT_QUOTE,
            )
    quote_id = str(quote["id"])
    if quote.get("state") == "inProgress":
        with session_scope() as session:
            quote = submit_quote(session, ANNA, quote_id)
    if quote.get("state") == "pending":
        with session_scope() as session:
            quote = approve_quote(session, BERND, quote_id)
    if quote.get("state") == "approved":
        with session_scope() as session:
            record_education(
                session,
                ANNA,
                quote_id,
                presented_to="Thomas Schmidt",
                channel="phone",
                note="Explained the included volume and the price per GB beyond it.",
            )
        with session_scope() as session:
            accept_quote(session, schmidt(customer_id), quote_id)
    with session_scope() as session:
        if _order(session, customer_id, quote_id) is None:
            # No customer request, so no pre-sale flow: Anna places the order herself.
            order_from_quote(session, ANNA, quote_id)
    order_id = _wait(
        "Autohaus Schmidt's order from its accepted quote",
        lambda s: (_order(s, customer_id, quote_id) or {}).get("id"),
        FLOW_TIMEOUT_SECONDS,
    )

    def delivered(session: Session) -> JsonDict | None:
        order = _order(session, customer_id, quote_id) or {}
        if order.get("state") in ("rejected", "cancelled", "failed"):
            raise StoryStalled(f"Autohaus Schmidt's order {order_id} is {order['state']}")
        return (
            order if order.get("customerAcceptance") or order.get("state") == "completed" else None
        )

    order = _wait(f"order {order_id} to be delivered", delivered, FLOW_TIMEOUT_SECONDS)
    if (order.get("customerAcceptance") or {}).get("state") == "awaiting":
        with session_scope() as session:
            accept_delivery(session, schmidt(customer_id), order_id, note="Online, thank you.")
    _wait(
        f"the post-ordering flow of order {order_id} to complete",
        lambda s: _flow_state(s, "post-ordering", order_id) == "completed" or None,
        FLOW_TIMEOUT_SECONDS,
    )
    return str(order_id)


# ----- usage --------------------------------------------------------------------------


def _included_gb(session: Session, offering_id: str) -> Decimal:
    offering = session.get(ProductOfferingRow, offering_id)
    for use in (offering.body if offering else {}).get("prodSpecCharValueUse") or []:
        if use.get("name") == "includedVolumeGB":
            values = use.get("productSpecCharacteristicValue") or []
            chosen = next((v for v in values if v.get("isDefault")), values[0] if values else None)
            if chosen is not None:
                return Decimal(str(chosen.get("value")))
    return Decimal(0)


def _feed_usage(customer_id: str) -> None:
    """The dealer's hourly traffic over its first day online, as the network's usage
    feed delivers it (TMF635 records, one per site and hour): the included volume and
    ``EXTRA_GB`` beyond it."""
    with session_scope() as session:
        access = session.scalar(
            select(ProductRow).where(
                ProductRow.owner_customer_id == customer_id, ProductRow.name.like("Site access%")
            )
        )
        if access is None:
            raise StoryStalled("Autohaus Schmidt has no site access product")
        site_id = str(access.body["place"][0]["id"])
        offering_id = str(access.body["productOffering"]["id"])
        total = _included_gb(session, offering_id) + EXTRA_GB
        started = datetime.fromisoformat(str(access.body["startDate"]).replace("Z", "+00:00"))
        first = started.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        per_hour = (total / USAGE_HOURS).quantize(Decimal("0.000001"))
        records = [
            Usage(
                usage_id=f"{TRAFFIC}/{site_id}/{first + timedelta(hours=h):%Y-%m-%dT%H}Z",
                customer_id=customer_id,
                product_id=None,
                site_id=site_id,
                usage_type=TRAFFIC,
                start_at=first + timedelta(hours=h),
                end_at=first + timedelta(hours=h + 1),
                volume=per_hour,
            )
            for h in range(USAGE_HOURS)
        ]
        ingest_usage(session, records)


# ----- the bill runs ------------------------------------------------------------------


def _bill_run(period: str) -> str:
    """The Billing flow's run for ``period`` on the first of the month after."""
    _clock_to(_morning(billing_flow.period_bounds(period)[1] + timedelta(days=1)))
    workflow_id = billing_flow.start_bill_run(period)
    billing_flow.wait_for_bill_run(workflow_id, period)
    return workflow_id


def _bills_of(
    session: Session, customer_id: str, category: str = "normal"
) -> list[CustomerBillRow]:
    return list(
        session.scalars(
            select(CustomerBillRow)
            .where(
                CustomerBillRow.owner_customer_id == customer_id,
                CustomerBillRow.category == category,
                CustomerBillRow.bill_no.is_not(None),
            )
            .order_by(CustomerBillRow.bill_no)
        )
    )


# ----- the bank -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Credit:
    reference: str  # the bank's own reference of the entry
    amount: Decimal
    day: date
    debtor: str
    iban: str
    remittance: str
    end_to_end: str | None = None
    mandate: str | None = None


def _camt(kind: str, message_id: str, day: date, credits: list[_Credit]) -> bytes:
    """A bank's camt.053 statement or camt.054 credit notification (version 001.02, as
    German banks deliver them) of credits on the provider's account."""
    document, container = {
        "camt.053": ("BkToCstmrStmt", "Stmt"),
        "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
    }[kind]
    entries = []
    for c in credits:
        debit = c.mandate is not None
        family, sub = ("IDDT", "ESDD") if debit else ("RCDT", "ESCT")
        refs = f"<EndToEndId>{escape(c.end_to_end or 'NOTPROVIDED')}</EndToEndId>"
        if c.mandate:
            refs += f"<MndtId>{escape(c.mandate)}</MndtId>"
        entries.append(
            f"""<Ntry><Amt Ccy="EUR">{c.amount:.2f}</Amt><CdtDbtInd>CRDT</CdtDbtInd>
<Sts>BOOK</Sts><BookgDt><Dt>{c.day}</Dt></BookgDt><ValDt><Dt>{c.day}</Dt></ValDt>
<AcctSvcrRef>{escape(c.reference)}</AcctSvcrRef>
<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>
<NtryDtls><TxDtls><Refs>{refs}</Refs>
<AmtDtls><TxAmt><Amt Ccy="EUR">{c.amount:.2f}</Amt></TxAmt></AmtDtls>
<RltdPties><Dbtr><Nm>{escape(c.debtor)}</Nm></Dbtr><DbtrAcct><Id><IBAN>{c.iban}</IBAN></Id></DbtrAcct>
<Cdtr><Nm>{escape(PROVIDER_NAME)}</Nm></Cdtr><CdtrAcct><Id><IBAN>{PROVIDER_IBAN}</IBAN></Id></CdtrAcct>
</RltdPties><RmtInf><Ustrd>{escape(c.remittance)}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""
        )
    created = f"{day}T07:00:00"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{kind}.001.02">
<{document}><GrpHdr><MsgId>{escape(message_id)}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>
<{container}><Id>{escape(message_id)}</Id><CreDtTm>{created}</CreDtTm>
<Acct><Id><IBAN>{PROVIDER_IBAN}</IBAN></Id><Ccy>EUR</Ccy>
<Svcr><FinInstnId><BIC>{PROVIDER_BIC}</BIC></FinInstnId></Svcr></Acct>
{"".join(entries)}
</{container}></{document}></Document>
"""
    return xml.encode("utf-8")


def _collect_and_book(bill_id: str) -> str:
    """3.8.5: the direct debit of a bill collected on its due date (pain.008) and the
    bank's camt.054 credit of the collection booked; what happened, in words."""
    with session_scope() as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.payment_due_date is not None
        if bill.status == "settled":
            return f"{bill.bill_no} settled"
        due = bill.payment_due_date
        batch = collect(session, due, created_at=_morning(due - timedelta(days=5)))
        if batch is None:
            raise StoryStalled(f"no direct debit collected for {bill.bill_no} on {due}")
        items = [i for i in batch_items(session, batch.id) if i.bill_id == bill_id]
        (item,) = items
        account = session.get(BillingAccountRow, bill.billing_account_id)
        credit = _Credit(
            reference=f"DD{due:%Y%m%d}{str(bill.bill_no)[-6:]}",
            amount=item.amount,
            day=due,
            debtor=str(account.name if account else ""),
            iban=_iban_of(session, bill.billing_account_id),
            remittance=str(bill.bill_no),
            end_to_end=item.end_to_end_id,
            mandate=item.mandate_reference,
        )
        message = f"camt054-{due:%Y%m%d}-{str(bill.bill_no)[-6:]}"
        import_statement(session, _camt("camt.054", message, due, [credit]))
        return (
            f"{batch.message_id} ({item.sequence}, B2B) collected {item.amount} EUR on {due}; "
            f"camt.054 booked"
        )


def _iban_of(session: Session, account_id: str) -> str:
    body = session.scalar(
        select(PaymentMethodRow.body).where(PaymentMethodRow.billing_account_id == account_id)
    )
    return str((body or {}).get("accountNumber") or "")


# ----- the late payer -----------------------------------------------------------------


def _case(bill_id: str) -> JsonDict:
    with session_scope(readonly=True) as session:
        return dunning_rules.dunning_of_bill(session, PAULA, bill_id)


def _wake(bill_id: str) -> None:
    with session_scope(readonly=True) as session:
        for case_id in dunning_rules.open_cases_of_bills(session, [bill_id]):
            engine.send(
                dunning_rules.dunning_workflow_id(case_id), "look again", dunning_flow.TOPIC
            )


def _at(bill_id: str, level: int, status: str) -> None:
    def check(session: Session) -> bool | None:
        case = dunning_rules.dunning_of_bill(session, PAULA, bill_id)
        return (case["level"] >= level and case["status"] == status) or None

    _wait(
        f"the dunning of bill {bill_id} to reach level {level} ({status})",
        check,
        FLOW_TIMEOUT_SECONDS,
    )


def _products_are(customer_id: str, status: str) -> None:
    def check(session: Session) -> bool | None:
        statuses = set(
            session.scalars(
                select(ProductRow.status).where(
                    ProductRow.owner_customer_id == customer_id,
                    ProductRow.name.like("Site access%"),
                )
            )
        )
        return statuses == {status} or None

    _wait(f"Autohaus Schmidt's access to be {status}", check, FLOW_TIMEOUT_SECONDS)


def _dun(customer_id: str, bill_id: str) -> None:
    """3.8.5: the bill not paid: overdue, reminder, notice with its fee, final notice,
    suspension through the Fulfillment flow; then the transfer arrives and the services
    are resumed. The flows' clock moves over each deadline and the flow is woken."""
    with session_scope(readonly=True) as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.payment_due_date is not None
        due, bill_no, amount = bill.payment_due_date, str(bill.bill_no), bill.remaining_amount
    if _case(bill_id)["status"] == "none":
        overdue_on = due + timedelta(days=10)
        _clock_to(_morning(overdue_on))
        dunning_flow.start_overdue_check(overdue_on.isoformat())
        _at(bill_id, 1, "open")
    for level in (2, 3):
        if _case(bill_id)["level"] < level:
            FLOW_CLOCK.advance(DUNNING_STEP)
            _wake(bill_id)
            _at(bill_id, level, "open")
    if _case(bill_id)["status"] == "open":
        FLOW_CLOCK.advance(DUNNING_STEP)
        _wake(bill_id)
        _at(bill_id, 4, "suspended")
    if _case(bill_id)["status"] == "suspended":
        _products_are(customer_id, "suspended")
        paid_on = FLOW_CLOCK.now().astimezone(BERLIN).date()
        with session_scope() as session:
            transfer = _Credit(
                reference=f"TR{paid_on:%Y%m%d}{bill_no[-6:]}",
                amount=amount,
                day=paid_on,
                debtor=SCHMIDT_LEGAL,
                iban=SCHMIDT_IBAN,
                remittance=f"Rechnung {bill_no}",
            )
            import_statement(
                session, _camt("camt.053", f"STMT-{paid_on:%Y%m%d}-SCHMIDT", paid_on, [transfer])
            )
    _at(bill_id, 4, "closed")
    _products_are(customer_id, "active")
    _changes_completed(customer_id)


def _changes_completed(customer_id: str) -> None:
    """The suspension's and the resumption's post-ordering flows have ended, not only
    set the products: the story shuts the engine down next, and a flow stopped between
    its step's commit and its checkpoint would be told as failed."""
    with session_scope(readonly=True) as session:
        orders = session.scalars(
            select(ProductOrderRow.id)
            .where(ProductOrderRow.owner_customer_id == customer_id)
            .order_by(ProductOrderRow.created_at, ProductOrderRow.id)
        ).all()
    # The first order (the installation) waits on for its acceptance and survey.
    for order_id in orders[1:]:
        workflow_id = fulfillment_flow.post_ordering_workflow_id(order_id)

        def ended(_: Session, workflow_id: str = workflow_id) -> bool | None:
            status = DBOS.get_workflow_status(workflow_id)
            return status is None or status.status not in ("PENDING", "ENQUEUED") or None

        _wait(f"flow {workflow_id} to end", ended, FLOW_TIMEOUT_SECONDS)


# ----- the enquiry --------------------------------------------------------------------


def _disputed_line(session: Session, bill: CustomerBillRow) -> AppliedRateRow:
    site_id = session.scalar(
        select(GeographicSiteRow.id).where(
            GeographicSiteRow.owner_customer_id == bill.owner_customer_id,
            GeographicSiteRow.body["code"].as_string() == DISPUTED_SITE,
        )
    )
    products = set(
        session.scalars(
            select(ProductRow.id).where(
                ProductRow.owner_customer_id == bill.owner_customer_id,
                ProductRow.name.like("Site access%"),
            )
        )
    )
    rates = session.scalars(
        select(AppliedRateRow)
        .where(AppliedRateRow.bill_id == bill.id, AppliedRateRow.rate_type == "recurring")
        .order_by(AppliedRateRow.id)
    ).all()
    for rate in rates:
        product = session.get(ProductRow, rate.product_id) if rate.product_id else None
        if product is None or product.id not in products:
            continue
        places = [str(p.get("id")) for p in product.body.get("place") or []]
        if site_id in places:
            return rate
    raise StoryStalled(f"bill {bill.bill_no} has no access line of {DISPUTED_SITE}")


def _enquiry(customer_id: str, bill_id: str) -> None:
    """3.8.1: BMW disputes the Köln access line of its second bill; Paula agrees and
    proposes the credit note (above the approval limit it waits for Tobias's approval);
    the credit note (GS-...) references the bill and is set off against it. Worked on
    the story's day (the flows' clock), so the credit note is dated in the bill's month."""
    with enquiries.CLOCK.at(FLOW_CLOCK.now()):
        _work_enquiry(customer_id, bill_id)


def _work_enquiry(customer_id: str, bill_id: str) -> None:
    with session_scope() as session:
        found = session.scalar(
            select(BillingEnquiryRow).where(BillingEnquiryRow.bill_id == bill_id).limit(1)
        )
        if found is None:
            bill = session.get(CustomerBillRow, bill_id)
            assert bill is not None
            line = _disputed_line(session, bill)
            enquiry = dispute_bill(
                session, katrin(customer_id), bill_id, description=DISPUTE, line_ids=[line.id]
            )
            enquiry_id = str(enquiry["id"])
        else:
            enquiry_id = found.id
    with session_scope() as session:
        row = session.get(BillingEnquiryRow, enquiry_id)
        assert row is not None
        status = row.status
    if status == "open":
        with session_scope() as session:
            proposed = propose_adjustment(
                session,
                PAULA,
                enquiry_id,
                reason="Agreed: the access of the Köln dealer is credited for the month",
            )
            status = str(proposed.get("status"))
    if status == "pendingApproval":
        with session_scope() as session:
            approve_adjustment(session, TOBIAS, enquiry_id)


# ----- the story ----------------------------------------------------------------------


def _activation_month(session: Session, customer_id: str) -> str:
    completed = [
        str(body["completionDate"])
        for body in session.scalars(
            select(ProductOrderRow.body).where(ProductOrderRow.owner_customer_id == customer_id)
        )
        if body.get("state") == "completed" and body.get("completionDate")
    ]
    if not completed:
        raise StoryStalled("BMW has no completed order: tell the Fulfillment story first")
    done = datetime.fromisoformat(min(completed).replace("Z", "+00:00")).astimezone(BERLIN)
    return f"{done.year:04d}-{done.month:02d}"


def _told(bmw: str) -> bool:
    with session_scope(readonly=True) as session:
        schmidt_id = _schmidt_id(session)
        if schmidt_id is None:
            return False
        notes = _bills_of(session, bmw, "creditNote")
        normal = _bills_of(session, bmw)
        late = _bills_of(session, schmidt_id)
        if not notes or len(normal) < 2 or not late:
            return False
        if any(b.status != "settled" for b in normal[:2]):
            return False
        case = dunning_rules.dunning_of_bill(session, PAULA, late[0].id)
        return bool(case["status"] == "closed")


def tell_billing(directory: Path | None = None) -> BillingSummary:
    """Tell the billing part of the story (flows embedded in this process) and return
    what it shows; the bills' PDFs are written into ``directory`` (the current one)."""
    where = directory or Path.cwd()
    with session_scope(readonly=True) as session:
        bmw = _customer_id(session)
        first = _activation_month(session, bmw)
    months = (first, _month_after(first))
    if _told(bmw):
        summary = _read_back(bmw, months, where)
        summary.told_before = True
        return summary
    bootstrap()
    launched_here = not engine.is_running()
    use_network(network(bmw))
    try:
        engine.launch()
        with _flow_clock():
            schmidt_id, site_id = _schmidt_customer()
            _schmidt_order(schmidt_id, site_id)
            _feed_usage(schmidt_id)
            _bill_run(months[0])
            with session_scope(readonly=True) as session:
                bmw_first = _bills_of(session, bmw)[0].id
                schmidt_first = _bills_of(session, schmidt_id)[0].id
            _collect_and_book(bmw_first)
            _dun_first(schmidt_first)
            _bill_run(months[1])
            with session_scope(readonly=True) as session:
                bmw_second = _bills_of(session, bmw)[1].id
            _enquiry(bmw, bmw_second)
            _collect_and_book(bmw_second)
            _dun(schmidt_id, schmidt_first)
    finally:
        if launched_here:
            engine.shutdown()
        use_network(None)
    return _read_back(bmw, months, where, write=True)


def _dun_first(bill_id: str) -> None:
    """The bill overdue ten days after its due date: the daily check opens the case and
    the reminder goes out."""
    if _case(bill_id)["status"] != "none":
        return
    with session_scope(readonly=True) as session:
        bill = session.get(CustomerBillRow, bill_id)
        assert bill is not None and bill.payment_due_date is not None
        overdue_on = bill.payment_due_date + timedelta(days=10)
    _clock_to(_morning(overdue_on))
    dunning_flow.start_overdue_check(overdue_on.isoformat())
    _at(bill_id, 1, "open")


def _read_back(
    bmw: str, months: tuple[str, str], where: Path, *, write: bool = False
) -> BillingSummary:
    summary = BillingSummary(months=months)
    with session_scope(readonly=True) as session:
        schmidt_id = _schmidt_id(session) or ""
        names = {bmw: "BMW AG", schmidt_id: SCHMIDT}
        rows = list(
            session.scalars(
                select(CustomerBillRow)
                .where(
                    CustomerBillRow.owner_customer_id.in_([bmw, schmidt_id]),
                    CustomerBillRow.bill_no.is_not(None),
                )
                .order_by(CustomerBillRow.bill_no)
            )
        )
        # month by month, each month's bills before the credit notes that correct them
        rows.sort(key=lambda r: (r.period_start or date.min, r.category == "creditNote"))
        for row in rows:
            path = where / f"{row.bill_no}.pdf"
            if write or not path.exists():
                path.write_bytes(bills.bill_document(session, row.id))
            net = Decimal(str(row.body.get("taxExcludedAmount", {}).get("value", "0")))
            period = (
                f"{row.period_start:%Y-%m-%d}..{row.period_end:%Y-%m-%d}"
                if row.period_start and row.period_end
                else ""
            )
            summary.bills.append(
                BillView(
                    customer=names.get(str(row.owner_customer_id), ""),
                    bill_no=str(row.bill_no),
                    category=str(row.category),
                    period=period,
                    net=net,
                    tax=row.amount_due - net,
                    gross=row.amount_due,
                    state=str(row.status),
                    pdf=path.name,
                    bill_id=row.id,
                )
            )
        bmw_bills = [b for b in rows if b.owner_customer_id == bmw and b.category == "normal"]
        if bmw_bills:
            first = bmw_bills[0]
            lines = session.scalars(
                select(AppliedRateRow).where(AppliedRateRow.bill_id == first.id)
            )
            for line in lines:
                summary.first_bill_lines[line.rate_type] = (
                    summary.first_bill_lines.get(line.rate_type, 0) + 1
                )
                days = (line.characteristic or {}).get("days")
                if line.rate_type == "recurring" and days is not None:
                    of = (line.characteristic or {}).get("daysOfMonth")
                    summary.prorated.add(f"from {line.period_start} ({days} of {of} days)")
        credits = session.scalars(
            select(AppliedRateRow).where(
                AppliedRateRow.source_key.like("sla-credit/%"),
                AppliedRateRow.customer_id == bmw,
            )
        ).all()
        by_id = {b.id: b for b in rows}
        for credit in credits:
            bill = by_id.get(str(credit.bill_id))
            summary.credit = f"{-credit.tax_excluded} EUR ({credit.name})"
            summary.credit_bill = str(bill.bill_no) if bill else "not billed yet"
            summary.credit_on_first_bill = bool(bmw_bills) and bill is bmw_bills[0]
        usage = session.scalars(
            select(AppliedRateRow).where(
                AppliedRateRow.rate_type == "usage", AppliedRateRow.bill_id.is_not(None)
            )
        ).all()
        for line in usage:
            bill = by_id.get(str(line.bill_id))
            summary.usage_bill = (
                f"{bill.bill_no if bill else line.bill_id}: {line.name}, {line.quantity} GB "
                f"at {line.unit_price} = {line.tax_excluded} EUR"
            )
        for bill in bmw_bills[:2]:
            summary.collection += f"{bill.bill_no}: {bill.status}" + (
                "; " if bill is bmw_bills[0] else ""
            )
        late = [b for b in rows if b.owner_customer_id == schmidt_id and b.category == "normal"]
        dunning_traces: list[FlowTrace] = []
        if late:
            case = dunning_rules.dunning_of_bill(session, PAULA, late[0].id)
            summary.dunning = [
                f"{h.get('name') or h.get('event')} {str(h.get('date', ''))[:10]}"
                + (f" (fee {h['fee']['value']} EUR)" if h.get("fee") else "")
                + (f" (suspension on {h['suspensionDate']})" if h.get("suspensionDate") else "")
                + (f": {h['outcome']}" if h.get("outcome") else "")
                for h in case.get("history", [])
            ]
            dunning_traces = flows_of_case(session, late[0].id)
            summary.schmidt_products = ", ".join(
                sorted(
                    f"{name} {status}"
                    for name, status in session.execute(
                        select(ProductRow.name, ProductRow.status).where(
                            ProductRow.owner_customer_id == schmidt_id
                        )
                    )
                )
            )
        enquiry = session.scalar(
            select(BillingEnquiryRow).where(BillingEnquiryRow.owner_customer_id == bmw).limit(1)
        )
        if enquiry is not None:
            adjustment = enquiry.body.get("adjustment") or {}
            authorization = (adjustment.get("authorization") or {}).get("state")
            credited = (adjustment.get("netAmount") or {}).get("value")
            how = "approved by a second person" if authorization else "under the approval limit"
            summary.enquiry = (
                f"BMW disputed a line of {by_id[enquiry.bill_id].bill_no}; "
                f"enquiry {enquiry.status}, {credited} EUR net credited ({how})"
                if enquiry.bill_id in by_id
                else f"enquiry {enquiry.status}"
            )
        for note in (b for b in rows if b.category == "creditNote"):
            referenced = by_id.get(str(note.body.get("referencedBill")))
            summary.credit_note = (
                f"{note.bill_no} over {note.amount_due} EUR references "
                f"{referenced.bill_no if referenced else note.body.get('referencedBill')}"
            )
        for period in months:
            summary.traces += flows_of_case(session, billing_flow.bill_run_workflow_id(period))
        summary.traces += dunning_traces
    return summary


def print_billing(console: Console, summary: BillingSummary) -> None:
    table = Table(title="Billing: the bills of the story", title_justify="left")
    for column in ("Customer", "Bill", "Period", "Net", "Tax", "Gross", "State", "PDF"):
        table.add_column(column, justify="right" if column in ("Net", "Tax", "Gross") else "left")
    for b in summary.bills:
        table.add_row(
            b.customer,
            b.bill_no,
            b.period,
            f"{b.net:.2f}",
            f"{b.tax:.2f}",
            f"{b.gross:.2f}",
            b.state,
            b.pdf,
        )
    console.print(table)
    facts = Table(title="Billing in figures", title_justify="left")
    facts.add_column("What")
    facts.add_column("Detail")
    facts.add_row(
        "BMW's first bill (3.8.2, 3.8.3)",
        ", ".join(f"{count} {kind}" for kind, count in sorted(summary.first_bill_lines.items())),
    )
    facts.add_row(
        "SLA credit (3.8.2)",
        f"{summary.credit} on {summary.credit_bill}"
        + (
            ": owed from the first of the month after the violated month, which is the "
            "activation month, so the first bill carries it"
            if summary.credit_on_first_bill
            else ""
        ),
    )
    facts.add_row(
        "Recurring charges",
        "prorated from each site's activation: " + ", ".join(sorted(summary.prorated)),
    )
    facts.add_row(
        "Traffic rated (3.8.2)",
        (summary.usage_bill or "no usage line")
        + "; BMW's quote has no traffic item, so its sites' traffic is not charged",
    )
    facts.add_row("SEPA direct debit (3.8.5)", summary.collection)
    facts.add_row("Dunning of Autohaus Schmidt (3.8.5)", "; ".join(summary.dunning))
    facts.add_row("Autohaus Schmidt's products", summary.schmidt_products)
    facts.add_row("Billing enquiry (3.8.1)", summary.enquiry)
    facts.add_row("Credit note", summary.credit_note)
    console.print(facts)
    if summary.told_before:
        console.print(
            "The billing story had been told on this database before; nothing was changed."
        )
