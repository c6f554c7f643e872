"""The analytical store: facts and dimensions kept apart from the operational tables.

Every table is prefixed ``an_``. Nothing in the operational areas reads or writes them:
they are derived (``store.py``) from the operational tables, refreshed per customer when
the bus reports a change and rebuilt whole by ``etomcrm analytics rebuild``. Imported
history (``an_history_*``) is the one exception: it comes from the provider's CSV, not
from the operational tables, so a rebuild keeps it.

The store sits in the operational database on purpose (README, "Analytical CRM"): the
same transaction guarantees, backups and both engines, with the tables apart by name.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Float, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from etomcrm.db import Base, JSONDoc, UTCDateTime

MONEY = Numeric(14, 2)
QUANTITY = Numeric(20, 6)
ID = String(64)


def _serial() -> Mapped[int]:
    return mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


# ----- dimensions -------------------------------------------------------------------


class AnCustomer(Base):
    """Customer dimension: who, in which segment, since when, in what state."""

    __tablename__ = "an_customer"

    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str | None] = mapped_column(String(50))
    created_on: Mapped[date | None] = mapped_column(Date)


class AnSegment(Base):
    """Segment dimension: the segments the customers are in, computed from their facts
    (3.9.2, ``segmentation.segment_for``)."""

    __tablename__ = "an_segment"

    segment: Mapped[str] = mapped_column(String(100), primary_key=True)


class AnSite(Base):
    """Site dimension (TMF674)."""

    __tablename__ = "an_site"

    site_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(200))


class AnProduct(Base):
    """Product dimension: an installed product (TMF637) and its offering."""

    __tablename__ = "an_product"

    product_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    offering_id: Mapped[str | None] = mapped_column(ID)
    offering_name: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str | None] = mapped_column(String(50))


class AnCampaign(Base):
    """Campaign dimension (3.3)."""

    __tablename__ = "an_campaign"

    campaign_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(50))
    budget: Mapped[Decimal | None] = mapped_column(MONEY)


class AnDay(Base):
    """Time dimension: every day a fact falls on, with its month (``YYYY-MM``)."""

    __tablename__ = "an_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    year: Mapped[int] = mapped_column(Integer)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday 0


# ----- facts ------------------------------------------------------------------------


class AnRevenueFact(Base):
    """Billed revenue and credits per customer, product and month: the rated charges
    that an issued bill carries, summed by kind (``rate_type``: recurring, oneTime,
    usage, discount, credit, adjustment). Credits and discounts are negative."""

    __tablename__ = "an_revenue_fact"

    id: Mapped[int] = _serial()
    customer_id: Mapped[str] = mapped_column(ID)
    product_id: Mapped[str | None] = mapped_column(ID)
    month: Mapped[str] = mapped_column(String(7), index=True)
    rate_type: Mapped[str] = mapped_column(String(30))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (Index("ix_an_revenue_fact_customer_month", "customer_id", "month"),)


class AnUsageFact(Base):
    """Usage per site and day (UTC), summed over the records of that day."""

    __tablename__ = "an_usage_fact"

    id: Mapped[int] = _serial()
    customer_id: Mapped[str] = mapped_column(ID)
    site_id: Mapped[str | None] = mapped_column(ID)
    day: Mapped[date] = mapped_column(Date, index=True)
    usage_type: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(20))
    volume: Mapped[Decimal] = mapped_column(QUANTITY)
    records: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_an_usage_fact_customer_day", "customer_id", "day"),)


class AnContactFact(Base):
    """One customer contact (TMF683 partyInteraction) with its channel, reason and times.

    ``response_seconds``: from the contact's arrival (its creation) to the start of its
    handling (``interactionDate.startDateTime``); zero for a contact taken as it came
    (a call logged after it began).
    ``handling_seconds``: from the start to the end of its handling. Either is empty
    where the contact does not say. ``first_contact_resolved``: an inbound contact that
    ended and was not followed by another inbound contact of the same customer with the
    same reason within the window (setting ``analytics_fcr_window_days``).
    """

    __tablename__ = "an_contact_fact"

    interaction_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    channel: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(20))
    status: Mapped[str | None] = mapped_column(String(50))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    response_seconds: Mapped[int | None] = mapped_column(Integer)
    handling_seconds: Mapped[int | None] = mapped_column(Integer)
    ended: Mapped[bool] = mapped_column(Boolean)
    first_contact_resolved: Mapped[bool] = mapped_column(Boolean)


class AnTicketFact(Base):
    """One trouble ticket (TMF621) and its repair time (creation to resolution)."""

    __tablename__ = "an_ticket_fact"

    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    status: Mapped[str | None] = mapped_column(String(50))
    priority: Mapped[str | None] = mapped_column(String(50))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    month: Mapped[str] = mapped_column(String(7))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repair_seconds: Mapped[int | None] = mapped_column(Integer)


class AnOrderFact(Base):
    """One product order (TMF622): its state and how many sites it installs."""

    __tablename__ = "an_order_fact"

    order_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    state: Mapped[str | None] = mapped_column(String(50))
    ordered_on: Mapped[date] = mapped_column(Date, index=True)
    month: Mapped[str] = mapped_column(String(7))
    item_count: Mapped[int] = mapped_column(Integer)
    # Sites of the order's add items: what installation and routers cost per site.
    site_count: Mapped[int] = mapped_column(Integer)
    completed_on: Mapped[date | None] = mapped_column(Date)
    completed_month: Mapped[str | None] = mapped_column(String(7))


class AnDunningFact(Base):
    """One dunning case (3.8.5) of a customer's bill: the level it reached."""

    __tablename__ = "an_dunning_fact"

    case_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    opened_on: Mapped[date] = mapped_column(Date, index=True)
    month: Mapped[str] = mapped_column(String(7))
    level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(50))


class AnCampaignTouchFact(Base):
    """A campaign touching a customer: a marketing message sent (``message``) or a
    response recorded as a sales lead (``response``)."""

    __tablename__ = "an_campaign_touch_fact"

    touch_id: Mapped[str] = mapped_column(ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID, index=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    day: Mapped[date] = mapped_column(Date, index=True)


class AnCampaignTarget(Base):
    """A customer a campaign targeted, in its treated or its control group (3.3)."""

    __tablename__ = "an_campaign_target"

    campaign_id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    group: Mapped[str] = mapped_column("target_group", String(10))
    assigned_on: Mapped[date] = mapped_column(Date)


class AnCampaignLeadFact(Base):
    """A customer's response to a campaign (a TMF699 salesLead naming it) and how far it
    went: the lead's status, the opportunity qualified from it, its stage and the day
    it was won."""

    __tablename__ = "an_campaign_lead_fact"

    lead_id: Mapped[str] = mapped_column(ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID, index=True)
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    responded_on: Mapped[date] = mapped_column(Date)
    lead_status: Mapped[str | None] = mapped_column(String(50))
    opportunity_id: Mapped[str | None] = mapped_column(ID)
    opportunity_stage: Mapped[str | None] = mapped_column(String(50))
    won_on: Mapped[date | None] = mapped_column(Date)


# ----- imported history -------------------------------------------------------------


class AnHistoryImport(Base):
    """One CSV of history a provider brought along, imported whole."""

    __tablename__ = "an_history_import"

    import_id: Mapped[str] = mapped_column(ID, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    row_count: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(200))


class AnHistoryCustomer(Base):
    """A customer of the provider's history with its contract and outcome. History for
    the churn model, not a customer to bill: ``customer_id`` links it to a live customer
    only when the provider's id matches one."""

    __tablename__ = "an_history_customer"

    id: Mapped[int] = _serial()
    import_id: Mapped[str] = mapped_column(ID, index=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[str | None] = mapped_column(ID, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(100))
    tenure_months: Mapped[int] = mapped_column(Integer)
    contract_type: Mapped[str] = mapped_column(String(30))
    payment_method: Mapped[str] = mapped_column(String(30))
    monthly_charges: Mapped[Decimal] = mapped_column(MONEY)
    total_charges: Mapped[Decimal] = mapped_column(MONEY)
    services: Mapped[str] = mapped_column(String(500))  # ";"-separated, sorted
    churned: Mapped[bool] = mapped_column(Boolean)
    observed_on: Mapped[date | None] = mapped_column(Date)


class AnPending(Base):
    """What the bus reported changed and the store has not derived again yet: a customer
    (``tables``: a bit per per-customer table, 0 for all), a customer's usage day
    (``key`` ``<customer>|<YYYY-MM-DD>``) or a campaign. The handlers only mark; the
    catch-up (:func:`etomcrm.analytics.store.catch_up`) derives, off the request and
    the flows, once however often a customer changed meanwhile."""

    __tablename__ = "an_pending"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tables: Mapped[int] = mapped_column(Integer, default=0)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# ----- churn model -------------------------------------------------------------------


class AnChurnModel(Base):
    """One fit of the churn model (``etomcrm.analytics.churn``), kept as data, not as a
    pickle: the features' names, the scaler's means and scales, the logistic
    regression's coefficients and intercept, the calibration map and the out-of-fold
    evaluation. The newest version is the one in use; older ones stay for comparison.
    Not derived: a rebuild keeps them."""

    __tablename__ = "an_churn_model"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    trained_by: Mapped[str] = mapped_column(String(200))
    customers: Mapped[int] = mapped_column(Integer)
    churned: Mapped[int] = mapped_column(Integer)
    features: Mapped[list[str]] = mapped_column(JSONDoc)
    means: Mapped[list[float]] = mapped_column(JSONDoc)
    scales: Mapped[list[float]] = mapped_column(JSONDoc)
    coefficients: Mapped[list[float]] = mapped_column(JSONDoc)
    intercept: Mapped[float] = mapped_column(Float)
    calibration: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


# What a rebuild empties and derives again (imported history is not derived).
DERIVED = (
    AnCustomer,
    AnSegment,
    AnSite,
    AnProduct,
    AnCampaign,
    AnDay,
    AnRevenueFact,
    AnUsageFact,
    AnContactFact,
    AnTicketFact,
    AnOrderFact,
    AnDunningFact,
    AnCampaignTouchFact,
    AnCampaignTarget,
    AnCampaignLeadFact,
)
