"""The demonstration data of DESIGN.md section 5, loaded through the service layer.

Provider "Extranet Services GmbH" serves BMW AG, whose headquarters in München and
dealers and suppliers across Germany join one extranet. Every record goes through
:func:`etomcrm.core.resources.create` as the ``SYSTEM`` principal, so it is validated
against the official TMF schema, audited and evented exactly like an API call.

Loading is idempotent: each record is looked up by a natural key (a site's code, an
offering's name, ...) and only created when missing, so a second run changes nothing.
"""

# The data tables below keep one record per line, so they are wider than the code.
# ruff: noqa: E501

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from etomcrm.catalog.service import (
    CATALOG_KIND,
    CATEGORY_KIND,
    LEAD_TIME_CHARACTERISTIC,
    PRODUCT_OFFERING_KIND,
    PRODUCT_OFFERING_PRICE_KIND,
    PRODUCT_SPECIFICATION_KIND,
    PRODUCT_STOCK_KIND,
    SLA_CHARACTERISTICS,
    SLA_TYPE,
)
from etomcrm.config import get_settings
from etomcrm.core.resources import ResourceKind, create, list_resources, patch
from etomcrm.core.tmf_schemas import JsonDict
from etomcrm.customer_interface.service import (
    CUSTOMER_KIND,
    GEOGRAPHIC_SITE_KIND,
    INDIVIDUAL_KIND,
    ORGANIZATION_KIND,
    PARTY_INTERACTION_KIND,
)
from etomcrm.db import session_scope
from etomcrm.security.service import SYSTEM
from etomcrm.selling.quote_costs import COST_CHARACTERISTIC

# ----- the data ------------------------------------------------------------------------

# The provider by default (ETOMCRM_PROVIDER_NAME names another).
PROVIDER_NAME = "Extranet Services GmbH"
CUSTOMER_NAME = "BMW AG"
CATALOG_NAME = "Extranet Services"
# Prices and terms of the catalog apply from this date; fixed so every run agrees.
CATALOG_VALID_FROM = "2026-01-01T00:00:00Z"
# 3.4.4: BMW's headquarters pays for every dealer site by SEPA B2B direct debit.
BILLING_ACCOUNT_NAME = "BMW AG Zentrale"
MANDATE_REFERENCE = "BMW-EXTRANET-0001"
MANDATE_SIGNED = "2025-11-03"
PAYER_IBAN = "DE02120300000000202051"
PAYER_BIC = "BYLADEM1001"


@dataclass(frozen=True)
class Site:
    """One BMW location that joins the extranet."""

    code: str  # natural key: unique, never shown to BMW as a name
    role: str  # headquarters, dealer or supplier
    name: str
    street: str
    postcode: str
    city: str
    state: str  # German Bundesland


HEADQUARTERS = Site(
    "BMW-HQ",
    "headquarters",
    "BMW Group headquarters (Vierzylinder)",
    "Petuelring 130",
    "80809",
    "München",
    "Bayern",
)

# fmt: off
# Dealer names are invented; cities, postcodes and states are real.
DEALERS: tuple[Site, ...] = (
    Site("BMW-DLR-MUC", "dealer", "BMW Autohaus Ostermaier München", "Landsberger Straße 200", "80687", "München", "Bayern"),
    Site("BMW-DLR-AUG", "dealer", "BMW Autohaus Brenner Augsburg", "Schaezlerstraße 24", "86150", "Augsburg", "Bayern"),
    Site("BMW-DLR-NUE", "dealer", "BMW Autohaus Kellermann Nürnberg", "Marientorgraben 8", "90402", "Nürnberg", "Bayern"),
    Site("BMW-DLR-ING", "dealer", "BMW Autohaus Auer Ingolstadt", "Harderstraße 15", "85049", "Ingolstadt", "Bayern"),
    Site("BMW-DLR-ROS", "dealer", "BMW Autohaus Reisinger Rosenheim", "Münchener Straße 42", "83022", "Rosenheim", "Bayern"),
    Site("BMW-DLR-PAS", "dealer", "BMW Autohaus Wimmer Passau", "Bahnhofstraße 31", "94032", "Passau", "Bayern"),
    Site("BMW-DLR-BYU", "dealer", "BMW Autohaus Pöhlmann Bayreuth", "Bahnhofstraße 18", "95444", "Bayreuth", "Bayern"),
    Site("BMW-DLR-STR", "dealer", "BMW Autohaus Lindner Stuttgart", "Friedrichstraße 40", "70173", "Stuttgart", "Baden-Württemberg"),
    Site("BMW-DLR-KAR", "dealer", "BMW Autohaus Vogt Karlsruhe", "Kriegsstraße 120", "76133", "Karlsruhe", "Baden-Württemberg"),
    Site("BMW-DLR-MAN", "dealer", "BMW Autohaus Quadrat Mannheim", "Kaiserring 10", "68161", "Mannheim", "Baden-Württemberg"),
    Site("BMW-DLR-FRB", "dealer", "BMW Autohaus Schwarzwald Freiburg", "Bismarckallee 7", "79098", "Freiburg im Breisgau", "Baden-Württemberg"),
    Site("BMW-DLR-ULM", "dealer", "BMW Autohaus Münsterblick Ulm", "Olgastraße 86", "89073", "Ulm", "Baden-Württemberg"),
    Site("BMW-DLR-HDB", "dealer", "BMW Autohaus Neckartal Heidelberg", "Sofienstraße 12", "69117", "Heidelberg", "Baden-Württemberg"),
    Site("BMW-DLR-FRA", "dealer", "BMW Autohaus Hartmann Frankfurt", "Neue Mainzer Straße 20", "60311", "Frankfurt am Main", "Hessen"),
    Site("BMW-DLR-WIE", "dealer", "BMW Autohaus Taunus Wiesbaden", "Wilhelmstraße 52", "65183", "Wiesbaden", "Hessen"),
    Site("BMW-DLR-KAS", "dealer", "BMW Autohaus Habichtswald Kassel", "Kurfürstenstraße 9", "34117", "Kassel", "Hessen"),
    Site("BMW-DLR-DAR", "dealer", "BMW Autohaus Bergstraße Darmstadt", "Rheinstraße 40", "64283", "Darmstadt", "Hessen"),
    Site("BMW-DLR-KOE", "dealer", "BMW Autohaus Feldhaus Köln", "Tunisstraße 19", "50667", "Köln", "Nordrhein-Westfalen"),
    Site("BMW-DLR-DUS", "dealer", "BMW Autohaus Rheinufer Düsseldorf", "Graf-Adolf-Straße 70", "40210", "Düsseldorf", "Nordrhein-Westfalen"),
    Site("BMW-DLR-DOR", "dealer", "BMW Autohaus Westfalenring Dortmund", "Königswall 21", "44137", "Dortmund", "Nordrhein-Westfalen"),
    Site("BMW-DLR-ESS", "dealer", "BMW Autohaus Ruhrgebiet Essen", "Hachestraße 30", "45127", "Essen", "Nordrhein-Westfalen"),
    Site("BMW-DLR-BON", "dealer", "BMW Autohaus Siebengebirge Bonn", "Thomas-Mann-Straße 4", "53111", "Bonn", "Nordrhein-Westfalen"),
    Site("BMW-DLR-MUE", "dealer", "BMW Autohaus Prinzipalmarkt Münster", "Bahnhofstraße 14", "48143", "Münster", "Nordrhein-Westfalen"),
    Site("BMW-DLR-HAN", "dealer", "BMW Autohaus Leinebogen Hannover", "Georgstraße 36", "30159", "Hannover", "Niedersachsen"),
    Site("BMW-DLR-BRA", "dealer", "BMW Autohaus Löwenstadt Braunschweig", "Kurt-Schumacher-Straße 8", "38100", "Braunschweig", "Niedersachsen"),
    Site("BMW-DLR-OLD", "dealer", "BMW Autohaus Ammerland Oldenburg", "Staulinie 11", "26122", "Oldenburg", "Niedersachsen"),
    Site("BMW-DLR-HAM", "dealer", "BMW Autohaus Alstertor Hamburg", "Steinstraße 20", "20095", "Hamburg", "Hamburg"),
    Site("BMW-DLR-BRE", "dealer", "BMW Autohaus Weserstrand Bremen", "Am Wall 140", "28195", "Bremen", "Bremen"),
    Site("BMW-DLR-KIE", "dealer", "BMW Autohaus Förde Kiel", "Holstenbrücke 8", "24103", "Kiel", "Schleswig-Holstein"),
    Site("BMW-DLR-LUE", "dealer", "BMW Autohaus Hansestadt Lübeck", "Beckergrube 38", "23552", "Lübeck", "Schleswig-Holstein"),
    Site("BMW-DLR-ROK", "dealer", "BMW Autohaus Warnow Rostock", "Lange Straße 25", "18055", "Rostock", "Mecklenburg-Vorpommern"),
    Site("BMW-DLR-SWR", "dealer", "BMW Autohaus Seenland Schwerin", "Wismarsche Straße 120", "19053", "Schwerin", "Mecklenburg-Vorpommern"),
    Site("BMW-DLR-BER", "dealer", "BMW Autohaus Spreebogen Berlin", "Friedrichstraße 96", "10117", "Berlin", "Berlin"),
    Site("BMW-DLR-POT", "dealer", "BMW Autohaus Sanssouci Potsdam", "Breite Straße 22", "14467", "Potsdam", "Brandenburg"),
    Site("BMW-DLR-DRE", "dealer", "BMW Autohaus Elbflorenz Dresden", "Ostra-Allee 9", "01067", "Dresden", "Sachsen"),
    Site("BMW-DLR-ERF", "dealer", "BMW Autohaus Domplatz Erfurt", "Juri-Gagarin-Ring 90", "99084", "Erfurt", "Thüringen"),
    Site("BMW-DLR-MAI", "dealer", "BMW Autohaus Rheinhessen Mainz", "Große Bleiche 15", "55116", "Mainz", "Rheinland-Pfalz"),
    Site("BMW-DLR-TRI", "dealer", "BMW Autohaus Moseltal Trier", "Ostallee 3", "54290", "Trier", "Rheinland-Pfalz"),
    Site("BMW-DLR-HAL", "dealer", "BMW Autohaus Saaleufer Halle", "Hansering 17", "06108", "Halle (Saale)", "Sachsen-Anhalt"),
)

# Supplier names are invented; cities, postcodes and states are real.
SUPPLIERS: tuple[Site, ...] = (
    Site("BMW-SUP-LAN", "supplier", "Isar Kabelsysteme GmbH", "Porschestraße 12", "84030", "Landshut", "Bayern"),
    Site("BMW-SUP-DGF", "supplier", "Vilstal Sitzsysteme GmbH", "Teisbacher Straße 48", "84130", "Dingolfing", "Bayern"),
    Site("BMW-SUP-REG", "supplier", "Donau Präzisionsguss GmbH", "Hafenstraße 22", "93055", "Regensburg", "Bayern"),
    Site("BMW-SUP-WAC", "supplier", "Oberpfälzer Interieur GmbH", "Innovationspark 6", "92442", "Wackersdorf", "Bayern"),
    Site("BMW-SUP-ERL", "supplier", "Mittelfranken Sensorik GmbH", "Am Weichselgarten 21", "91058", "Erlangen", "Bayern"),
    Site("BMW-SUP-KEM", "supplier", "Allgäu Leichtbau GmbH", "Ursulasrieder Straße 40", "87437", "Kempten (Allgäu)", "Bayern"),
    Site("BMW-SUP-SWF", "supplier", "Mainfranken Wälzlager GmbH", "Hafenstraße 30", "97424", "Schweinfurt", "Bayern"),
    Site("BMW-SUP-BAM", "supplier", "Regnitz Polstertechnik GmbH", "Hallstadter Straße 101", "96052", "Bamberg", "Bayern"),
    Site("BMW-SUP-WUE", "supplier", "Würzburger Steuergeräte GmbH", "Nürnberger Straße 118", "97076", "Würzburg", "Bayern"),
    Site("BMW-SUP-HNB", "supplier", "Neckar Elektronik AG", "Salzstraße 140", "74076", "Heilbronn", "Baden-Württemberg"),
    Site("BMW-SUP-FHN", "supplier", "Bodensee Antriebstechnik GmbH", "Allmannsweilerstraße 25", "88046", "Friedrichshafen", "Baden-Württemberg"),
    Site("BMW-SUP-DUI", "supplier", "Rheinhafen Stahlumformung GmbH", "Am Nordhafen 9", "47059", "Duisburg", "Nordrhein-Westfalen"),
    Site("BMW-SUP-AAC", "supplier", "Aachener Elektromobil Komponenten GmbH", "Jülicher Straße 215", "52070", "Aachen", "Nordrhein-Westfalen"),
    Site("BMW-SUP-LIP", "supplier", "Hellweg Lichttechnik GmbH", "Erwitter Straße 120", "59557", "Lippstadt", "Nordrhein-Westfalen"),
    Site("BMW-SUP-BIE", "supplier", "Teutoburger Fahrwerkteile GmbH", "Eckendorfer Straße 30", "33609", "Bielefeld", "Nordrhein-Westfalen"),
    Site("BMW-SUP-OSN", "supplier", "Hase Kunststofftechnik GmbH", "Hafenringstraße 14", "49090", "Osnabrück", "Niedersachsen"),
    Site("BMW-SUP-GOE", "supplier", "Leinetal Messtechnik GmbH", "Rudolf-Wissell-Straße 28", "37079", "Göttingen", "Niedersachsen"),
    Site("BMW-SUP-LEJ", "supplier", "Leipziger Karosserieteile GmbH", "Radefelder Allee 33", "04158", "Leipzig", "Sachsen"),
    Site("BMW-SUP-CHE", "supplier", "Erzgebirge Feinmechanik GmbH", "Annaberger Straße 240", "09125", "Chemnitz", "Sachsen"),
    Site("BMW-SUP-ZWI", "supplier", "Westsachsen Glas Automotive GmbH", "Crimmitschauer Straße 67", "08058", "Zwickau", "Sachsen"),
    Site("BMW-SUP-JEN", "supplier", "Saale Optik Systeme GmbH", "Göschwitzer Straße 40", "07745", "Jena", "Thüringen"),
    Site("BMW-SUP-MAG", "supplier", "Elbe Gusswerk GmbH", "Saalestraße 30", "39126", "Magdeburg", "Sachsen-Anhalt"),
    Site("BMW-SUP-COT", "supplier", "Lausitz Aluminium GmbH", "Am Seegraben 12", "03051", "Cottbus", "Brandenburg"),
    Site("BMW-SUP-SAA", "supplier", "Saar Schmiedetechnik GmbH", "Mainzer Straße 150", "66121", "Saarbrücken", "Saarland"),
    Site("BMW-SUP-KAI", "supplier", "Pfälzer Dichtungstechnik GmbH", "Merkurstraße 35", "67663", "Kaiserslautern", "Rheinland-Pfalz"),
    Site("BMW-SUP-KOB", "supplier", "Mittelrhein Bremsensysteme GmbH", "August-Thyssen-Straße 11", "56070", "Koblenz", "Rheinland-Pfalz"),
)


@dataclass(frozen=True)
class Contact:
    """A person we deal with at BMW or one of its dealers."""

    key: str
    given_name: str
    family_name: str
    job_title: str
    role: str  # their role on the BMW customer
    email: str
    phone: str
    bmw_employee: bool


# Mail domains end in .example (RFC 2606) and phone numbers lie in the ranges the
# Bundesnetzagentur reserves for fiction, so no real person is ever written to.
CONTACTS: tuple[Contact, ...] = (
    Contact("it_lead", "Katrin", "Weber", "Head of Dealer Network IT", "IT network lead", "katrin.weber@bmw.example", "+49 89 99998 101", True),
    Contact("procurement", "Michael", "Brandl", "Strategic Purchasing, IT Services", "procurement", "michael.brandl@bmw.example", "+49 89 99998 102", True),
    Contact("billing", "Sabine", "Huber", "Accounts Payable", "billing contact", "sabine.huber@bmw.example", "+49 89 99998 103", True),
    Contact("supplier_network", "Andreas", "Kraus", "Supplier Network Coordination", "supplier network contact", "andreas.kraus@bmw.example", "+49 89 99998 104", True),
    Contact("dealer_augsburg", "Thomas", "Lechner", "IT coordinator, BMW Autohaus Brenner Augsburg", "dealer IT contact", "t.lechner@autohaus-brenner.example", "+49 89 99998 105", False),
    Contact("dealer_koeln", "Julia", "Schmitt", "IT administrator, BMW Autohaus Feldhaus Köln", "dealer IT contact", "j.schmitt@autohaus-feldhaus.example", "+49 221 4710 106", False),
)
# fmt: on


@dataclass(frozen=True)
class Interaction:
    """One entry of the contact history with BMW."""

    reason: str  # natural key: no commas (a comma means "or" in a TMF filter)
    days_ago: int
    direction: str
    channel: str
    contact: str  # Contact.key
    minutes: int
    description: str


CHANNELS = {"phone": "Phone", "email": "E-mail", "meeting": "Meeting"}

# fmt: off
INTERACTIONS: tuple[Interaction, ...] = (
    Interaction(
        "Request for extranet access across the dealer network",
        41, "inbound", "phone", "it_lead", 25,
        "BMW wants one extranet for all German dealers and its main suppliers, "
        "with central access to dealer management and parts ordering systems.",
    ),
    Interaction(
        "Questionnaire on sites and bandwidth sent",
        39, "outbound", "email", "it_lead", 5,
        "Sent our site questionnaire (address, opening hours, expected traffic, "
        "existing lines) and an overview of site access at 10/100/1000 Mbit/s.",
    ),
    Interaction(
        "Site list of dealers and suppliers received",
        33, "inbound", "email", "supplier_network", 5,
        f"Received the list of {len(DEALERS + SUPPLIERS)} dealer and supplier sites and the headquarters; "
        "the suppliers need access to the parts logistics portal only.",
    ),
    Interaction(
        "Meeting on SLA options Gold and Silver",
        26, "outbound", "meeting", "it_lead", 90,
        "Workshop at the Vierzylinder in München: Gold (99.9 %, 4 h repair) for dealers "
        "with workshop systems, Silver (99.5 %, 8 h) for the smaller sites; "
        "penalty credits explained.",
    ),
    Interaction(
        "Price request for 100 Mbit/s with SLA Gold",
        20, "inbound", "email", "procurement", 10,
        "Procurement asks for a quote: 100 Mbit/s with SLA Gold for all dealers, "
        "10 Mbit/s with SLA Silver for suppliers, managed router and installation.",
    ),
    Interaction(
        "Dealer asks about router installation date in Augsburg",
        13, "inbound", "phone", "dealer_augsburg", 12,
        "The Augsburg dealer asks when the managed router can be installed; the "
        "workshop is closed on Saturdays, installation only on weekdays.",
    ),
    Interaction(
        "Invoice address and billing contact confirmed",
        9, "outbound", "email", "billing", 5,
        "One monthly invoice for all sites to BMW AG accounts payable, "
        "by e-mail, with a per-site breakdown.",
    ),
    Interaction(
        "Dealer in Köln asks for an LTE backup option",
        4, "inbound", "phone", "dealer_koeln", 15,
        "The Köln dealer wants a backup path for the workshop systems; "
        "offered the LTE backup modem, in stock in the central warehouse.",
    ),
)
# fmt: on

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Site access", "Connections of a site to the extranet, by bandwidth"),
    ("Equipment", "Hardware at the site, owned by the customer after purchase"),
    ("Services", "One-time work and usage-based charges"),
    ("Service levels", "Contracted availability, repair time and latency, with credits"),
)


@dataclass(frozen=True)
class SpecCharacteristic:
    """A characteristic of a product specification and the values it may take."""

    name: str
    description: str
    value_type: str
    values: tuple[Any, ...]
    unit: str | None = None
    default: Any = None


@dataclass(frozen=True)
class Specification:
    key: str
    name: str  # natural key
    number: str
    description: str
    characteristics: tuple[SpecCharacteristic, ...]
    at_type: str | None = None


@dataclass(frozen=True)
class SlaFigures:
    name: str
    number: str
    availability: float
    repair_hours: int
    latency_ms: int
    penalty: str


SLA_LEVELS: tuple[SlaFigures, ...] = (
    SlaFigures("SLA Gold", "ES-SLA-G", 99.9, 4, 30, "10% of MRC per violated metric, max 30%"),
    SlaFigures("SLA Silver", "ES-SLA-S", 99.5, 8, 50, "5% of MRC per violated metric, max 15%"),
)

# fmt: off
SPECIFICATIONS: tuple[Specification, ...] = (
    Specification(
        "access",
        "Extranet site access",
        "ES-ACC",
        "A symmetric fibre or copper connection of one site into the customer's extranet (MPLS VPN).",
        (
            SpecCharacteristic(
                "bandwidth", "Symmetric bandwidth of the access", "number", (10, 100, 1000),
                "Mbit/s", 100,
            ),
            SpecCharacteristic(
                "includedVolumeGB", "Traffic per month included in the monthly charge",
                "number", (500, 2000, 10000), "GB", 2000,
            ),
        ),
    ),
    Specification(
        "router",
        "Managed router",
        "ES-RTR",
        "Business router at the site, configured, monitored and updated by us.",
        (
            SpecCharacteristic("ports", "Gigabit Ethernet LAN ports", "number", (4,), None, 4),
            SpecCharacteristic(
                "backupSlot", "Slot for the LTE backup modem", "boolean", (True,), None, True
            ),
        ),
    ),
    Specification(
        "lte_modem",
        "LTE backup modem",
        "ES-LTE",
        "LTE modem for the managed router; takes over when the access line fails.",
        (SpecCharacteristic("lteCategory", "LTE category", "number", (6,), None, 6),),
    ),
    Specification(
        "installation",
        "Installation",
        "ES-INST",
        "On-site installation of the access and the router on a weekday, with acceptance test.",
        (
            SpecCharacteristic(
                "appointmentWindowHours", "Length of the agreed appointment window", "number",
                (4,), "h", 4,
            ),
        ),
    ),
    Specification(
        "traffic",
        "Traffic volume",
        "ES-TRF",
        "Traffic beyond the volume included in the site access, billed per GB each month.",
        (SpecCharacteristic("billingUnit", "Unit of billing", "string", ("GB",), None, "GB"),),
    ),
)


@dataclass(frozen=True)
class Price:
    kind: str  # recurring, oneTime or usage
    amount: float  # EUR, net of VAT
    label: str


@dataclass(frozen=True)
class Offering:
    name: str  # natural key
    specification: str  # Specification.key or an SLA level name
    category: str
    description: str
    prices: tuple[Price, ...]
    bandwidth_mbits: int | None = None
    included_volume_gb: int | None = None


OFFERINGS: tuple[Offering, ...] = (
    Offering("Site access 10 Mbit/s", "access", "Site access", "10 Mbit/s symmetric, 500 GB per month included.", (Price("recurring", 189.0, "monthly charge"),), 10, 500),
    Offering("Site access 100 Mbit/s", "access", "Site access", "100 Mbit/s symmetric, 2,000 GB per month included.", (Price("recurring", 429.0, "monthly charge"),), 100, 2000),
    Offering("Site access 1000 Mbit/s", "access", "Site access", "1 Gbit/s symmetric, 10,000 GB per month included.", (Price("recurring", 1190.0, "monthly charge"),), 1000, 10000),
    Offering("Managed router", "router", "Equipment", "Managed business router, bought once, managed for the contract term.", (Price("oneTime", 690.0, "purchase"),)),
    Offering("Installation", "installation", "Services", "On-site installation of access and router per site.", (Price("oneTime", 950.0, "per site"),)),
    Offering("Traffic volume beyond included volume", "traffic", "Services", "Each GB beyond the volume included in the site access.", (Price("usage", 0.09, "per GB"),)),
    Offering("SLA Gold", "SLA Gold", "Service levels", "99.9 % availability, 4 h time to repair, 30 ms latency bound, per site.", (Price("recurring", 149.0, "monthly charge"),)),
    Offering("SLA Silver", "SLA Silver", "Service levels", "99.5 % availability, 8 h time to repair, 50 ms latency bound, per site.", (Price("recurring", 69.0, "monthly charge"),)),
)

# The access offerings bind customers for this long; equipment and services do not.
MINIMUM_TERM_MONTHS = 24
# fmt: on


@dataclass(frozen=True)
class Stock:
    name: str  # natural key
    specification: str  # Specification.key
    offering: str | None  # Offering.name, where the material is sold on its own
    available: int
    lead_time_days: int
    minimum: int
    reorder: int
    unit_cost: float  # EUR paid to the vendor per unit: the quote's cost estimate


WAREHOUSE = {
    "name": "Central warehouse Frankfurt am Main",
    "street1": "Hanauer Landstraße 300",
    "postcode": "60314",
    "city": "Frankfurt am Main",
    "stateOrProvince": "Hessen",
    "country": "DE",
}
STOCKS: tuple[Stock, ...] = (
    Stock(
        "Managed router in the central warehouse", "router", "Managed router", 40, 21, 10, 30, 415.0
    ),
    Stock("LTE backup modem in the central warehouse", "lte_modem", None, 15, 35, 5, 20, 95.0),
)


# ----- the summary ---------------------------------------------------------------------


@dataclass
class KindCount:
    created: int = 0
    updated: int = 0
    present: int = 0


@dataclass
class DemoSummary:
    """What one run did, per TMF resource type (in load order)."""

    counts: dict[str, KindCount] = field(default_factory=dict)
    customer_id: str = ""
    router_specification_id: str = ""

    def count(self, type_name: str) -> KindCount:
        return self.counts.setdefault(type_name, KindCount())

    @property
    def created(self) -> int:
        return sum(c.created for c in self.counts.values())

    @property
    def updated(self) -> int:
        return sum(c.updated for c in self.counts.values())

    @property
    def present(self) -> int:
        return sum(c.present for c in self.counts.values())


# ----- the loading ---------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ref(
    body: JsonDict, referred_type: str, name_attribute: str = "name", **extra: str
) -> JsonDict:
    ref: JsonDict = {"id": body["id"], "@referredType": referred_type}
    if isinstance(body.get(name_attribute), str):
        ref["name"] = body[name_attribute]
    ref.update(extra)
    return ref


class _Loader:
    """Finds or creates records in one session and counts what it did."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.summary = DemoSummary()

    def ensure(self, kind: ResourceKind, key: dict[str, str], payload: JsonDict) -> JsonDict:
        """The record matching ``key`` (TMF attribute filters), created from ``payload``
        when there is none."""
        for attribute, value in key.items():
            # A comma is "any of" in a TMF filter, so such a key could match another record.
            if "," in value:
                raise ValueError(f"natural key {attribute}={value!r} must not contain a comma")
        found, total = list_resources(
            self.session, kind, SYSTEM, {a: [v] for a, v in key.items()}, 0, 1
        )
        count = self.summary.count(kind.type_name)
        if total:
            count.present += 1
            return found[0]
        body, _, _ = create(self.session, kind, SYSTEM, payload)
        count.created += 1
        return body

    def extend_list(
        self, kind: ResourceKind, body: JsonDict, attribute: str, refs: list[JsonDict]
    ) -> JsonDict:
        """Add the references missing from ``body[attribute]``; patch only when some are.

        Patching unconditionally would bump version and lastUpdate and write an audit
        record on every run, even when nothing changed.
        """
        current = list(body.get(attribute) or [])
        known = {r.get("id") for r in current if isinstance(r, dict)}
        missing = [r for r in refs if r["id"] not in known]
        if not missing:
            return body
        changed, _ = patch(self.session, kind, SYSTEM, body["id"], {attribute: current + missing})
        self.summary.count(kind.type_name).updated += 1
        return changed


def _organizations(loader: _Loader) -> tuple[JsonDict, JsonDict]:
    # The provider is the one the bills and QoS reports name (ETOMCRM_PROVIDER_NAME).
    provider_name = get_settings().provider_name
    provider = loader.ensure(
        ORGANIZATION_KIND,
        {"tradingName": provider_name},
        {
            "tradingName": provider_name,
            "name": provider_name,
            "nameType": "GmbH",
            "isLegalEntity": True,
            "isHeadOffice": True,
            "organizationType": "company",
            "status": "validated",
            "organizationIdentification": [
                {
                    "identificationType": "commercialRegister",
                    "identificationId": "HRB 118432",
                    "issuingAuthority": "Amtsgericht Frankfurt am Main",
                }
            ],
            "contactMedium": [
                {
                    "mediumType": "postalAddress",
                    "preferred": True,
                    "characteristic": {
                        "contactType": "headOffice",
                        "street1": "Mainzer Landstraße 50",
                        "postCode": "60325",
                        "city": "Frankfurt am Main",
                        "stateOrProvince": "Hessen",
                        "country": "DE",
                    },
                },
                {
                    "mediumType": "email",
                    "characteristic": {"emailAddress": "vertrieb@extranet-services.example"},
                },
            ],
        },
    )
    bmw = loader.ensure(
        ORGANIZATION_KIND,
        {"tradingName": CUSTOMER_NAME},
        {
            "tradingName": CUSTOMER_NAME,
            "name": "Bayerische Motoren Werke Aktiengesellschaft",
            "nameType": "AG",
            "isLegalEntity": True,
            "isHeadOffice": True,
            "organizationType": "company",
            "status": "validated",
            "existsDuring": {"startDateTime": "1916-03-07T00:00:00Z"},
            "organizationIdentification": [
                {
                    "identificationType": "commercialRegister",
                    "identificationId": "HRB 42243",
                    "issuingAuthority": "Amtsgericht München",
                },
                {
                    "identificationType": "vatId",
                    "identificationId": "DE129273398",
                    "issuingAuthority": "Bundeszentralamt für Steuern",
                },
            ],
            "contactMedium": [
                {
                    "mediumType": "postalAddress",
                    "preferred": True,
                    "characteristic": {
                        "contactType": "headOffice",
                        "street1": HEADQUARTERS.street,
                        "postCode": HEADQUARTERS.postcode,
                        "city": HEADQUARTERS.city,
                        "stateOrProvince": HEADQUARTERS.state,
                        "country": "DE",
                    },
                },
                {
                    "mediumType": "phone",
                    "characteristic": {"contactType": "switchboard", "phoneNumber": "+49 89 382-0"},
                },
            ],
        },
    )
    return provider, bmw


def _contacts(loader: _Loader, bmw: JsonDict) -> dict[str, JsonDict]:
    people: dict[str, JsonDict] = {}
    for contact in CONTACTS:
        payload: JsonDict = {
            "givenName": contact.given_name,
            "familyName": contact.family_name,
            "fullName": f"{contact.given_name} {contact.family_name}",
            "contactMedium": [
                {
                    "mediumType": "email",
                    "preferred": True,
                    "characteristic": {"contactType": "work", "emailAddress": contact.email},
                },
                {
                    "mediumType": "phone",
                    "characteristic": {"contactType": "work", "phoneNumber": contact.phone},
                },
            ],
            "partyCharacteristic": [
                {"name": "jobTitle", "valueType": "string", "value": contact.job_title}
            ],
            "languageAbility": [{"languageCode": "de", "isFavouriteLanguage": True}],
        }
        if contact.bmw_employee:
            payload["relatedParty"] = [_ref(bmw, "Organization", "tradingName", role="employer")]
        people[contact.key] = loader.ensure(
            INDIVIDUAL_KIND,
            {"familyName": contact.family_name, "givenName": contact.given_name},
            payload,
        )
    return people


def _customer(loader: _Loader, bmw: JsonDict, people: dict[str, JsonDict]) -> JsonDict:
    related = [
        {
            "id": people[c.key]["id"],
            "@referredType": "Individual",
            "name": f"{c.given_name} {c.family_name}",
            "role": c.role,
        }
        for c in CONTACTS
    ]
    return loader.ensure(
        CUSTOMER_KIND,
        {"name": CUSTOMER_NAME},
        {
            "name": CUSTOMER_NAME,
            # A prospect until its first completed order establishes the relationship (3.9.1).
            "status": "prospect",
            "statusReason": "Asked for an extranet across its dealer and supplier network",
            "engagedParty": _ref(bmw, "Organization", "tradingName"),
            "relatedParty": related,
            "characteristic": [
                {"name": "segment", "valueType": "string", "value": "enterprise"},
                {"name": "industry", "valueType": "string", "value": "automotive"},
                # Read by 3.5.2 credit: a score-based limit is far below a year of a
                # 65-site extranet; credit management granted BMW a limit after review.
                {"name": "creditScore", "valueType": "integer", "value": 1000},
                {"name": "approvedCreditLimit", "valueType": "string", "value": "750000.00"},
            ],
        },
    )


def _place(site: Site) -> JsonDict:
    return {
        "@type": "GeographicAddress",
        "name": f"{site.street}, {site.postcode} {site.city}",
        "street1": site.street,
        "postcode": site.postcode,
        "city": site.city,
        "stateOrProvince": site.state,
        "country": "DE",
    }


def _site_payload(site: Site, customer: JsonDict, hub: JsonDict | None) -> JsonDict:
    payload: JsonDict = {
        "code": site.code,
        "name": site.name,
        "description": f"BMW {site.role} site in {site.city}",
        "status": "active",
        "place": [_place(site)],
        "relatedParty": [_ref(customer, "Customer", role="customer")],
        "calendar": [
            {
                "day": "weekdays",
                "status": "open",
                "timeZone": "Europe/Berlin",
                "hourPeriod": [{"startHour": "08:00", "endHour": "18:00"}],
            }
        ],
    }
    if hub is not None:
        # Dealers and suppliers reach BMW's systems through the headquarters' hub.
        payload["siteRelationship"] = [
            {"id": hub["id"], "relationshipType": "connectsTo", "role": "extranet hub"}
        ]
    return payload


def _sites(loader: _Loader, customer: JsonDict) -> JsonDict:
    hub = loader.ensure(
        GEOGRAPHIC_SITE_KIND,
        {"code": HEADQUARTERS.code},
        _site_payload(HEADQUARTERS, customer, None),
    )
    for site in DEALERS + SUPPLIERS:
        loader.ensure(GEOGRAPHIC_SITE_KIND, {"code": site.code}, _site_payload(site, customer, hub))
    return hub


def _interactions(loader: _Loader, customer: JsonDict, people: dict[str, JsonDict]) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    by_key = {c.key: c for c in CONTACTS}
    for number, item in enumerate(INTERACTIONS):
        # Spread the contacts over the working day (UTC; 08:00 UTC is 09:00 in München).
        start = today - timedelta(days=item.days_ago) + timedelta(hours=8 + number % 6)
        end = start + timedelta(minutes=item.minutes)
        person = by_key[item.contact]
        loader.ensure(
            PARTY_INTERACTION_KIND,
            {"reason": item.reason},
            {
                "reason": item.reason,
                "description": item.description,
                "direction": item.direction,
                "status": "completed",
                "channel": [
                    {
                        "id": item.channel,
                        "name": CHANNELS[item.channel],
                        "@referredType": "Channel",
                    }
                ],
                "interactionDate": {"startDateTime": _iso(start), "endDateTime": _iso(end)},
                "relatedParty": [
                    _ref(customer, "Customer", role="customer"),
                    {
                        "id": people[item.contact]["id"],
                        "@referredType": "Individual",
                        "name": f"{person.given_name} {person.family_name}",
                        "role": person.role,
                    },
                ],
                "note": [
                    {
                        "author": "Extranet Services sales",
                        "date": _iso(end),
                        "text": item.description,
                    }
                ],
            },
        )


def _characteristic(char: SpecCharacteristic) -> JsonDict:
    values = []
    for value in char.values:
        entry: JsonDict = {"value": value, "valueType": char.value_type}
        if char.unit:
            entry["unitOfMeasure"] = char.unit
        entry["isDefault"] = value == char.default
        values.append(entry)
    return {
        "name": char.name,
        "description": char.description,
        "valueType": char.value_type,
        "configurable": len(char.values) > 1,
        "minCardinality": 1,
        "maxCardinality": 1,
        "productSpecCharacteristicValue": values,
    }


def _sla_specification(level: SlaFigures) -> Specification:
    figures: dict[str, tuple[Any, str | None, str]] = {
        "availabilityTarget": (level.availability, "%", "number"),
        "timeToRepairHours": (level.repair_hours, "h", "number"),
        "latencyBoundMs": (level.latency_ms, "ms", "number"),
        "penaltyRule": (level.penalty, None, "string"),
    }
    return Specification(
        level.name,
        level.name,
        level.number,
        f"Service level {level.name.removeprefix('SLA ')} for one site of the extranet.",
        tuple(
            SpecCharacteristic(name, SLA_CHARACTERISTICS[name], vtype, (value,), unit, value)
            for name, (value, unit, vtype) in figures.items()
        ),
        at_type=SLA_TYPE,
    )


@dataclass(frozen=True)
class CatalogRecords:
    specifications: dict[str, JsonDict]  # by Specification.key
    offerings: dict[str, JsonDict]  # by Offering.name


def _catalog(loader: _Loader, provider: JsonDict) -> CatalogRecords:
    categories = {
        name: loader.ensure(
            CATEGORY_KIND,
            {"name": name},
            {
                "name": name,
                "description": description,
                "isRoot": True,
                "lifecycleStatus": "Active",
                "version": "1.0",
                "validFor": {"startDateTime": CATALOG_VALID_FROM},
            },
        )
        for name, description in CATEGORIES
    }
    specs: dict[str, JsonDict] = {}
    for spec in SPECIFICATIONS + tuple(_sla_specification(level) for level in SLA_LEVELS):
        payload: JsonDict = {
            "name": spec.name,
            "productNumber": spec.number,
            "description": spec.description,
            "brand": provider["tradingName"],
            "isBundle": False,
            "lifecycleStatus": "Active",
            "version": "1.0",
            "validFor": {"startDateTime": CATALOG_VALID_FROM},
            "productSpecCharacteristic": [_characteristic(c) for c in spec.characteristics],
            "relatedParty": [_ref(provider, "Organization", "tradingName", role="owner")],
        }
        if spec.at_type:
            payload["@type"] = spec.at_type
            payload["@baseType"] = "ProductSpecification"
        specs[spec.key] = loader.ensure(PRODUCT_SPECIFICATION_KIND, {"name": spec.name}, payload)

    offerings: dict[str, JsonDict] = {}
    for offering in OFFERINGS:
        prices = [_price(loader, offering, price) for price in offering.prices]
        offerings[offering.name] = loader.ensure(
            PRODUCT_OFFERING_KIND,
            {"name": offering.name},
            _offering_payload(offering, specs[offering.specification], categories, prices),
        )

    # Categories list their offerings so the catalog can be browsed from the top; they
    # had to exist first because offerings refer to them.
    for name, category in categories.items():
        refs = [_ref(offerings[o.name], "ProductOffering") for o in OFFERINGS if o.category == name]
        categories[name] = loader.extend_list(CATEGORY_KIND, category, "productOffering", refs)

    loader.ensure(
        CATALOG_KIND,
        {"name": CATALOG_NAME},
        {
            "name": CATALOG_NAME,
            "description": "Site access, equipment, services and service levels for "
            "enterprise extranets in Germany. Prices in EUR, net of VAT.",
            "catalogType": "ProductCatalog",
            "lifecycleStatus": "Active",
            "version": "1.0",
            "validFor": {"startDateTime": CATALOG_VALID_FROM},
            "category": [_ref(c, "Category", version="1.0") for c in categories.values()],
            "relatedParty": [_ref(provider, "Organization", "tradingName", role="provider")],
        },
    )
    return CatalogRecords(specs, offerings)


def _price(loader: _Loader, offering: Offering, price: Price) -> JsonDict:
    payload: JsonDict = {
        "name": f"{offering.name}: {price.label}",
        "description": f"{price.label} of {offering.name}, EUR net of VAT",
        "priceType": price.kind,
        "price": {"unit": "EUR", "value": price.amount},
        "isBundle": False,
        "lifecycleStatus": "Active",
        "version": "1.0",
        "validFor": {"startDateTime": CATALOG_VALID_FROM},
    }
    if price.kind == "recurring":
        payload["recurringChargePeriodType"] = "month"
        payload["recurringChargePeriodLength"] = 1
    if price.kind == "usage":
        payload["unitOfMeasure"] = {"amount": 1, "units": "GB"}
    return loader.ensure(PRODUCT_OFFERING_PRICE_KIND, {"name": payload["name"]}, payload)


def _offering_payload(
    offering: Offering,
    spec: JsonDict,
    categories: dict[str, JsonDict],
    prices: list[JsonDict],
) -> JsonDict:
    payload: JsonDict = {
        "name": offering.name,
        "description": offering.description,
        "isBundle": False,
        "isSellable": True,
        "lifecycleStatus": "Active",
        "version": "1.0",
        "validFor": {"startDateTime": CATALOG_VALID_FROM},
        "productSpecification": _ref(spec, "ProductSpecification", version="1.0"),
        "category": [_ref(categories[offering.category], "Category", version="1.0")],
        "productOfferingPrice": [_ref(p, "ProductOfferingPrice") for p in prices],
    }
    if offering.bandwidth_mbits is not None:
        spec_ref = _ref(spec, "ProductSpecification", version="1.0")
        payload["prodSpecCharValueUse"] = [
            {
                "name": name,
                "valueType": "number",
                "minCardinality": 1,
                "maxCardinality": 1,
                "productSpecCharacteristicValue": [
                    {"value": value, "unitOfMeasure": unit, "isDefault": True}
                ],
                "productSpecification": spec_ref,
            }
            for name, value, unit in (
                ("bandwidth", offering.bandwidth_mbits, "Mbit/s"),
                ("includedVolumeGB", offering.included_volume_gb, "GB"),
            )
        ]
        payload["productOfferingTerm"] = [
            {
                "name": "Minimum term",
                "description": f"{MINIMUM_TERM_MONTHS} months, then renewed monthly",
                "duration": {"amount": MINIMUM_TERM_MONTHS, "units": "month"},
            }
        ]
    return payload


def _stocks(loader: _Loader, provider: JsonDict, catalog: CatalogRecords) -> None:
    for stock in STOCKS:
        spec = catalog.specifications[stock.specification]
        stocked: JsonDict = {
            "name": spec["name"],
            "productSpecification": _ref(spec, "ProductSpecification", version="1.0"),
            # material_availability reads the lead time from here.
            "productCharacteristic": [
                {
                    "name": LEAD_TIME_CHARACTERISTIC,
                    "valueType": "integer",
                    "value": stock.lead_time_days,
                },
                # The quote's internal cost estimate reads the purchase cost from here.
                {"name": COST_CHARACTERISTIC, "valueType": "number", "value": stock.unit_cost},
            ],
        }
        if stock.offering is not None:
            stocked["productOffering"] = _ref(catalog.offerings[stock.offering], "ProductOffering")
        loader.ensure(
            PRODUCT_STOCK_KIND,
            {"name": stock.name},
            {
                "name": stock.name,
                "description": f"{spec['name']} on hand for new sites; "
                f"replenished by the vendor within {stock.lead_time_days} days",
                "productStockStatusType": "available",
                "productStockLevel": {"amount": stock.available, "units": "unit"},
                "minStockLevel": {"amount": stock.minimum, "units": "unit"},
                "reorderQuantity": {"amount": stock.reorder, "units": "unit"},
                "stockedProduct": stocked,
                "place": {"role": "warehouse", "@referredType": "GeographicAddress", **WAREHOUSE},
                "relatedParty": [_ref(provider, "Organization", "tradingName", role="owner")],
            },
        )


def load(session: Session) -> DemoSummary:
    """Load the scenario into ``session``; records already there are left as they are."""
    loader = _Loader(session)
    provider, bmw = _organizations(loader)
    people = _contacts(loader, bmw)
    customer = _customer(loader, bmw, people)
    _sites(loader, customer)
    _interactions(loader, customer, people)
    catalog = _catalog(loader, provider)
    _stocks(loader, provider, catalog)
    loader.summary.customer_id = customer["id"]
    loader.summary.router_specification_id = catalog.specifications["router"]["id"]
    return loader.summary


def _print(console: Console, summary: DemoSummary) -> None:
    table = Table(title="BMW extranet scenario: the records loaded")
    table.add_column("Kind")
    table.add_column("Created", justify="right")
    table.add_column("Updated", justify="right")
    table.add_column("Already present", justify="right")
    for type_name, count in summary.counts.items():
        table.add_row(type_name, str(count.created), str(count.updated), str(count.present))
    table.add_section()
    table.add_row(
        "Total", str(summary.created), str(summary.updated), str(summary.present), style="bold"
    )
    console.print(table)
    if summary.created == 0 and summary.updated == 0:
        console.print(
            f"Nothing to do: the scenario is already loaded ({summary.present} records); "
            "nothing was created or changed."
        )
    else:
        console.print(
            f"Loaded {summary.created} new records"
            + (f" and updated {summary.updated}" if summary.updated else "")
            + (f"; {summary.present} were already present." if summary.present else ".")
        )
    console.print(
        f"Customer {CUSTOMER_NAME}: {CUSTOMER_KIND.path}/{summary.customer_id}",
        soft_wrap=True,
    )


def run_demo(console: Console) -> DemoSummary:
    """Load the BMW extranet scenario (idempotently), print and return what was done."""
    with session_scope() as session:
        summary = load(session)
    _print(console, summary)
    return summary
