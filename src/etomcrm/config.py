"""Settings, read from the environment (prefix ``ETOMCRM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ETOMCRM_", extra="ignore")

    database_url: str = f"sqlite:///{Path.cwd() / 'etomcrm.db'}"
    # Signs staff login tokens. When unset, a secret is generated once and kept in the
    # database so every worker process of one installation agrees on it.
    secret_key: str | None = None
    # The same from a file (a mounted secret), so it is neither in the environment nor
    # in the database.
    secret_key_file: Path | None = None
    max_body_bytes: int = 1_000_000
    default_page_limit: int = 50
    max_page_limit: int = 1000
    login_token_minutes: int = 480
    # Password guessing: sign-in attempts per minute from one client address and for one
    # user name (each worker counts its own), and the lock after consecutive failures
    # (kept in the database, so every worker honours it).
    login_attempts_per_address_per_minute: int = 30
    login_attempts_per_user_per_minute: int = 10
    login_lockout_failures: int = 10
    login_lockout_minutes: int = 15
    # Cached token lookups: a revoked API key stops working within this many seconds.
    token_cache_seconds: float = 30.0
    # How long one process may answer X-Total-Count from its cache (see core.totals).
    list_total_cache_seconds: float = 2.0
    hub_delivery_interval_seconds: float = 1.0
    hub_delivery_enabled: bool = True
    hub_max_backoff_seconds: float = 600.0
    # Internal hosts or networks (CIDR) hub listeners may be at; none by default
    # (core/callbacks.py). E.g. ETOMCRM_HUB_INTERNAL_TARGETS='["10.20.0.0/16"]'.
    hub_internal_targets: list[str] = []

    # Messages to customers (TMF681) go through a channel; the default writes each one
    # as an RFC 5322 file into this directory. With an SMTP URL they are mailed instead.
    message_dir: Path = Path.cwd() / "messages"
    smtp_url: str | None = None
    message_sender: str = "service@extranet-services.example"
    # Where customers reach the API and portal: links in messages point here.
    public_base_url: str = "http://127.0.0.1:8000"

    # Selling rules.
    quote_discount_approval_percent: float = 10.0  # above this, a second person approves
    quote_validity_days: int = 30
    # The internal cost estimate of a quote (3.4.3, seed 5.2): an engineer's hour on
    # site, and what a month of a line or SLA costs the provider (wholesale access,
    # backbone share, operations) as a share of its list price. A material's purchase
    # cost is kept with its stock (``unitCost`` of the stocked product).
    quote_labour_rate_per_hour: float = 85.0
    quote_recurring_cost_percent: float = 45.0

    # The simulated network side: everything it decides comes from this seed, so a run
    # can be repeated. One simulated lead-time day lasts this many real seconds (0 answers
    # at once; the demo uses a fraction of a second; tests choose).
    network_seed: int = 4242
    network_day_seconds: float = 0.0
    network_late_rate: float = 0.15
    network_failure_rate: float = 0.05
    network_unserviceable_rate: float = 0.02
    network_special_build_rate: float = 0.1

    # Durable flows (DBOS). The system database defaults to a SQLite file beside the
    # application database, or the same PostgreSQL database (schema "dbos").
    flows_system_database_url: str | None = None
    # Each process that runs flows needs its own executor id, or a restart of one
    # would recover the others' workflows too.
    flows_executor_id: str | None = None
    # In the embedded default the serving process also runs the flows; with False it
    # only enqueues them and `etomcrm worker` processes run them.
    flows_run_in_server: bool = True
    flows_worker_concurrency: int = 8

    # 3.6.4: a resolved ticket the customer does not answer closes after this long.
    ticket_silence_seconds: float = 3 * 24 * 3600.0
    # 3.5.5: a completed order the customer neither accepts nor objects to is deemed
    # accepted this many business days after its completion.
    order_acceptance_business_days: int = 5

    # Billing & Collections (3.8). The provider as it appears on every invoice (§14 UStG)
    # and as the creditor of SEPA direct debits; the demo's provider is fictitious.
    provider_name: str = "Extranet Services GmbH"
    provider_street: str = "Leopoldstraße 180"
    provider_post_code: str = "80804"
    provider_city: str = "München"
    provider_country: str = "DE"
    provider_vat_id: str = "DE129273398"
    provider_tax_number: str = "143/123/45678"
    provider_register: str = "Amtsgericht München HRB 123456"
    provider_iban: str = "DE89370400440532013000"
    provider_bic: str = "COBADEFFXXX"
    provider_bank: str = "Commerzbank"
    provider_creditor_id: str = "DE98ZZZ09999999999"
    provider_email: str = "billing@extranet-services.example"
    # Invoice series: numbers "{prefix}-{year}-{n:06d}", credit notes their own series.
    invoice_prefix: str = "RE"
    credit_note_prefix: str = "GS"
    vat_rate_percent: str = "19"
    payment_terms_days: int = 14
    # Lanes a bill run bills in parallel on PostgreSQL (each needs a flow worker process,
    # `etomcrm serve --flow-workers`); 0: as many as this machine has cores. More lanes
    # than the database has cores only take turns for them (bench/README.md, "Bill run").
    bill_run_lanes: int = Field(default=0, ge=0)
    # Credit notes above this (EUR, net) need a second person's approval (four eyes).
    credit_note_approval_eur: str = "500"
    # 3.8.5 dunning: business days (Bavaria) after the payment due date before the
    # reminder (Zahlungserinnerung), then between reminder and notice (Mahnung, with the
    # fee, EUR), notice and final notice, and from the final notice to the suspension it
    # announces. A case looks again this often while it waits (paused, suspended).
    dunning_grace_business_days: int = 3
    dunning_reminder_business_days: int = 7
    dunning_notice_business_days: int = 7
    dunning_final_notice_business_days: int = 5
    dunning_fee_eur: str = "5.00"
    dunning_recheck_seconds: float = 24 * 3600.0
    # Analytical CRM (seed 5.3). 3.2.3's targets: a contact's handling starts within
    # this many minutes of its arrival, and takes no longer than this; a contact is
    # resolved at first contact when the same customer does not come back with the
    # same reason within this many days.
    analytics_response_target_minutes: int = 240
    analytics_handling_target_minutes: int = 30
    analytics_fcr_window_days: int = 7
    # Cost to serve (EUR), what profitability takes off the billed revenue: per site
    # installed (the technician's visit), per router shipped (one per installed site),
    # per trouble ticket opened plus per hour of its repair, per dunning case.
    analytics_cost_installation_eur: str = "350.00"
    analytics_cost_router_eur: str = "180.00"
    analytics_cost_ticket_eur: str = "25.00"
    analytics_cost_repair_hour_eur: str = "60.00"
    analytics_cost_dunning_case_eur: str = "12.00"
    # Campaign success: a target converted when it ordered within this many days after
    # the campaign's targets were set (treated and control measured alike); billed
    # revenue is attributed to a campaign for this many months from the month of the
    # win, for the products first billed in that month or later.
    analytics_campaign_conversion_days: int = 90
    analytics_campaign_attribution_months: int = 12
    # Campaign planning: a segment's own response rate is used once past campaigns
    # reached at least this many of its customers (the overall rate otherwise).
    analytics_plan_min_reached: int = 30
    # The largest history CSV the API takes (the CLI reads files of any size).
    analytics_history_max_bytes: int = 50_000_000
    # The churn model (seed 5.3, predict). It replaces the churn rule of 3.9.3 only when
    # fitted on at least this many labelled customers with at least this many of each
    # outcome (churned, stayed), and when its out-of-fold AUC is at least the last figure
    # (below it, the model is at chance level). A live customer counts as stayed once
    # active this many months. The daily schedule refits a model older than this many days.
    churn_min_customers: int = 200
    churn_min_per_outcome: int = 20
    churn_min_auc: float = 0.6
    churn_stayed_after_months: int = 12
    churn_refit_after_days: int = 7
    # Next best offer (3.9.4): the margin of an offer is taken over this many months
    # (the quote's default term); P(accept) is the offering's share of accepted quotes
    # among the decided ones, in the customer's segment when it has at least
    # ``nbo_min_decided`` of them, over all customers when they have, else this prior.
    nbo_term_months: int = 36
    nbo_min_decided: int = 10
    nbo_prior_acceptance: str = "0.20"
    # A contract (an active product's start plus its term) ending within this many days
    # is the moment for the account manager to offer.
    nbo_contract_end_days: int = 90
    # 3.9.2 segments (README "Segments, trends and forecasts"): a customer's figures are
    # taken over the last this many complete months; billed revenue per month from which
    # a customer is of high or mid value (EUR, net); traffic per month from which its
    # usage is heavy (in the usage records' unit, GB); inbound contacts and tickets per
    # month from which it needs care. A dunning case in the window: it pays late.
    analytics_segment_months: int = 3
    analytics_segment_high_value_eur: str = "500.00"
    analytics_segment_mid_value_eur: str = "100.00"
    analytics_segment_heavy_usage: str = "100"
    analytics_segment_care_contacts: str = "2"
    # A month's change stands out beyond this many robust standard deviations of the
    # segment's earlier month-over-month changes; a forecast needs this many months.
    analytics_trend_standout_k: float = 3.0
    analytics_forecast_min_months: int = 6


@lru_cache
def get_settings() -> Settings:
    return Settings()
