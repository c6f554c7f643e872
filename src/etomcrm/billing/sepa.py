"""3.8.5 The files billing exchanges with the provider's bank: the SEPA direct-debit batch
it sends (pain.008) and the statements and notifications it receives (camt.053, camt.054).

Pure functions: no database, no clock but the one a caller passes. What a file means for
bills and payments is the payments module's business; this one only writes and reads the
bank's formats, exactly and refusing what it cannot read with a message a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

import sepaxml
from lxml import etree
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from etomcrm.config import get_settings
from etomcrm.core.errors import InvalidRequest
from etomcrm.db import utcnow

# ---------------------------------------------------------------------------------------
# pain.008: the direct-debit batch
# ---------------------------------------------------------------------------------------

# pain.008.001.02 is the version every German bank accepts (DFÜ-Abkommen Anlage 3 since
# 2016) and sepaxml's default; its XSD ships with sepaxml.
PAIN_008 = "pain.008.001.02"
SCHEMES = ("CORE", "B2B")
SEQUENCES = ("FRST", "RCUR")
CENT = Decimal("0.01")
# The largest amount the schema's ActiveOrHistoricCurrencyAndAmount and the SEPA rulebook
# allow in one transaction.
MAX_AMOUNT = Decimal("999999999.99")
# EPC/DK "RestrictedIdentificationSEPA1" (message and end-to-end ids, spaces allowed) and
# "SEPA2" (mandate ids, no space): the bank rejects anything else, so we refuse it first.
_SEPA1_ID = re.compile(r"[A-Za-z0-9+?/\-:().,' ]{1,35}")
_SEPA2_ID = re.compile(r"[A-Za-z0-9+?/\-:().,']{1,35}")


@dataclass(frozen=True)
class DirectDebit:
    """One collection in a batch: the bill(s) it collects, the debtor and the mandate."""

    end_to_end_id: str
    amount: Decimal
    debtor_name: str
    debtor_iban: str
    debtor_bic: str | None
    mandate_reference: str
    mandate_signed_on: date
    scheme: str  # "CORE" | "B2B"
    sequence: str  # "FRST" | "RCUR"
    remittance: str  # bill number(s)


def direct_debit_batch(
    *,
    collection_date: date,
    debits: Sequence[DirectDebit],
    message_id: str,
    created_at: datetime | None = None,
) -> bytes:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): the pain.008 file
    that asks the provider's bank to collect ``debits`` on ``collection_date``.

    One file per collection date, one payment-information block (PmtInf) per scheme
    (CORE, B2B) and sequence type (FRST, RCUR), because the bank books and clears each
    such block on its own; the creditor is the provider of ``get_settings()``. sepaxml
    writes the blocks (it keys its batches by sequence type and date, and the scheme by
    document, so there is one SepaDD per scheme whose blocks we gather into one
    document); then the group header's message id, creation time, count and control sum
    are set for the whole file, and the file is validated against sepaxml's bundled
    pain.008.001.02 XSD. ``created_at`` (UTC, default now) is the file's CreDtTm.

    Refuses (InvalidRequest) an empty batch, an amount that is not a positive whole
    number of cents, an unknown scheme or sequence type, an id the SEPA character set
    forbids, a duplicate end-to-end id, an invalid IBAN or BIC, a mandate signed after the
    collection date.
    """
    if not debits:
        raise InvalidRequest(
            f"A direct-debit batch for {collection_date.isoformat()} needs at least one "
            "debit: nothing is due for collection, so no file is written."
        )
    _check_id("messageId", message_id, _SEPA1_ID)
    seen: set[str] = set()
    cents = [_check_debit(debit, collection_date, seen) for debit in debits]
    settings = get_settings()
    parts: list[Any] = []
    for scheme in SCHEMES:
        of_scheme = [
            (debit, amount)
            for debit, amount in zip(debits, cents, strict=True)
            if debit.scheme == scheme
        ]
        if not of_scheme:
            continue
        document = sepaxml.SepaDD(
            {
                "name": settings.provider_name,
                "IBAN": settings.provider_iban,
                "BIC": settings.provider_bic,
                "batch": True,
                "creditor_id": settings.provider_creditor_id,
                "currency": "EUR",
                "instrument": scheme,
            },
            schema=PAIN_008,
        )
        # FRST before RCUR, each in the caller's order: sepaxml opens a block per
        # sequence type in the order it first meets one.
        for sequence in SEQUENCES:
            for debit, amount in of_scheme:
                if debit.sequence == sequence:
                    document.add_payment(_sepaxml_payment(debit, amount, collection_date))
        # validated below as one document; the parts alone would be validated twice
        parts.append(_parse_own(document.export(validate=False)))
    root = _assemble(parts, message_id, created_at or utcnow(), sum(cents))
    _validate_pain(root)
    # the declaration as sepaxml and the banks' own samples write it
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(
        etree.tostring(root, encoding="UTF-8")
    )


def _check_id(label: str, value: str, pattern: re.Pattern[str], where: str = "") -> None:
    if (
        not pattern.fullmatch(value)
        or value.startswith("/")
        or value.endswith("/")
        or "//" in value
    ):
        raise InvalidRequest(
            f"{where}{label} {value!r} is not a SEPA identifier: 1 to 35 of the letters "
            "A-Z a-z, digits and + ? / - : ( ) . , '"
            + (" or space" if pattern is _SEPA1_ID else "")
            + ", not starting or ending with '/' nor containing '//'."
        )


def _cents(amount: Decimal, where: str) -> int:
    """The amount in whole cents, as sepaxml counts; never rounded: a sub-cent amount is
    a rating or allocation error upstream, and collecting a rounded figure would hide it."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidRequest(f"{where}amount {amount!r} is not a decimal amount in EUR.")
    if amount <= 0 or amount > MAX_AMOUNT:
        raise InvalidRequest(
            f"{where}amount {amount} EUR is outside 0.01 to {MAX_AMOUNT} EUR: a direct "
            "debit collects a positive amount (a credit is paid out by transfer)."
        )
    if amount != amount.quantize(CENT):
        raise InvalidRequest(
            f"{where}amount {amount} EUR has fractions of a cent; a direct debit collects "
            "whole cents, so round the bill's amount due before collecting it."
        )
    return int(amount.scaleb(2))


def _check_debit(debit: DirectDebit, collection_date: date, seen: set[str]) -> int:
    where = f"Direct debit {debit.end_to_end_id!r}: "
    _check_id("endToEndId", debit.end_to_end_id, _SEPA1_ID, where="Direct debit: ")
    if debit.end_to_end_id in seen:
        raise InvalidRequest(
            f"{where}the end-to-end id appears twice in the batch; each collection needs "
            "its own, or a return could not be traced to its bill."
        )
    seen.add(debit.end_to_end_id)
    amount = _cents(debit.amount, where)
    if debit.scheme not in SCHEMES:
        raise InvalidRequest(f"{where}scheme {debit.scheme!r} is none of {', '.join(SCHEMES)}.")
    if debit.sequence not in SEQUENCES:
        raise InvalidRequest(
            f"{where}sequence type {debit.sequence!r} is none of {', '.join(SEQUENCES)} "
            "(FRST for a mandate's first collection, RCUR for the following ones)."
        )
    _check_id("mandate reference", debit.mandate_reference, _SEPA2_ID, where=where)
    if debit.mandate_signed_on > collection_date:
        raise InvalidRequest(
            f"{where}mandate {debit.mandate_reference} is signed on "
            f"{debit.mandate_signed_on.isoformat()}, after the collection date "
            f"{collection_date.isoformat()}."
        )
    if not debit.debtor_name.strip():
        raise InvalidRequest(f"{where}the debtor's name is empty.")
    if not debit.remittance.strip() or len(debit.remittance) > 140:
        raise InvalidRequest(
            f"{where}the remittance text (the bill numbers the debtor sees on the "
            f"statement) must have 1 to 140 characters, it has {len(debit.remittance)}."
        )
    try:
        IBAN(debit.debtor_iban)
        if debit.debtor_bic is not None:
            BIC(debit.debtor_bic)
    except SchwiftyException as error:
        raise InvalidRequest(f"{where}the debtor's bank account is not valid: {error}") from error
    return amount


def _sepaxml_payment(debit: DirectDebit, cents: int, collection_date: date) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "name": debit.debtor_name,
        "IBAN": str(IBAN(debit.debtor_iban)),
        "amount": cents,
        "type": debit.sequence,
        "collection_date": collection_date,
        "mandate_id": debit.mandate_reference,
        "mandate_date": debit.mandate_signed_on,
        "description": debit.remittance,
        "endtoend_id": debit.end_to_end_id,
    }
    # sepaxml writes "NOTPROVIDED" for a debtor bank only when the key is absent (IBAN-only
    # collection, allowed within SEPA since 2016).
    if debit.debtor_bic is not None:
        payment["BIC"] = str(BIC(debit.debtor_bic))
    return payment


def _pain(tag: str) -> str:
    return f"{{urn:iso:std:iso:20022:tech:xsd:{PAIN_008}}}{tag}"


def _parse_own(xml: bytes) -> Any:
    """A document sepaxml just wrote (trusted, but parsed as safely as any other)."""
    return etree.fromstring(xml, _safe_parser())


def _assemble(parts: list[Any], message_id: str, created_at: datetime, total_cents: int) -> Any:
    """One pain.008 document of sepaxml's documents (one per scheme): the first one's
    group header, every one's PmtInf blocks. The header then counts every transaction and
    sums every amount of the file, and each block's id is derived from the message id
    (sepaxml draws random ones) so the same batch always gives the same file."""
    root, others = parts[0], parts[1:]
    initiation = root.find(_pain("CstmrDrctDbtInitn"))
    for other in others:
        for block in other.iter(_pain("PmtInf")):
            initiation.append(block)
    header = initiation.find(_pain("GrpHdr"))
    header.find(_pain("MsgId")).text = message_id
    moment = created_at.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    header.find(_pain("CreDtTm")).text = moment.isoformat() + "Z"
    header.find(_pain("NbOfTxs")).text = str(
        len(initiation.findall(f"{_pain('PmtInf')}/{_pain('DrctDbtTxInf')}"))
    )
    header.find(_pain("CtrlSum")).text = _amount_text(total_cents)
    for number, block in enumerate(initiation.findall(_pain("PmtInf")), start=1):
        suffix = f"-{number}"
        block.find(_pain("PmtInfId")).text = message_id[: 35 - len(suffix)] + suffix
    return root


def _amount_text(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):.2f}"


@lru_cache(maxsize=1)
def _pain_schema() -> Any:
    path = Path(sepaxml.__file__).parent / "schemas" / f"{PAIN_008}.xsd"
    return etree.XMLSchema(etree.parse(str(path), _safe_parser()))


# One schema object serves every thread (bill runs collect in parallel); its error log
# is its own state, so one validation at a time.
_SCHEMA_LOCK = Lock()


def _validate_pain(root: Any) -> None:
    with _SCHEMA_LOCK:
        schema = _pain_schema()
        if schema.validate(root):
            return
        error = schema.error_log.last_error
    message = error.message.replace(f"{{urn:iso:std:iso:20022:tech:xsd:{PAIN_008}}}", "")
    where = ""
    # the error's path, e.g. /*/*[1]/*[3]/*[9]/*[4]/*[1]: the debit it lies in names it
    steps = (error.path or "").split("/")
    for depth in range(len(steps), 1, -1):
        found = root.getroottree().xpath("/".join(steps[:depth]))
        if found and etree.QName(found[0]).localname == "DrctDbtTxInf":
            e2e = found[0].findtext(f"{_pain('PmtId')}/{_pain('EndToEndId')}")
            where = f" in the debit {e2e!r}"
            break
    raise InvalidRequest(
        f"The direct-debit file would not pass the bank's {PAIN_008} schema{where}: {message}"
    )


# ---------------------------------------------------------------------------------------
# camt.053 / camt.052 / camt.054: what the bank reports
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankEntry:
    """One booked transaction the bank reports on the provider's account.

    ``amount`` is positive for money received, negative for money taken. A batch-booked
    entry (several collections credited as one sum) gives one BankEntry per transaction,
    ``entry_id`` "<bank reference>/<n>". A returned direct debit has ``return_reason``
    (the ISO code, e.g. "MD06"), ``amount`` minus the collection that came back (what the
    customer owes again), and ``fee`` the bank's charge on the return when the file states
    it, apart from ``amount`` even where the bank debits both as one sum.
    """

    entry_id: str
    booking_date: date
    amount: Decimal
    currency: str
    counterparty_name: str | None
    counterparty_iban: str | None
    remittance: str | None
    end_to_end_id: str | None
    mandate_reference: str | None
    return_reason: str | None
    fee: Decimal | None


_CAMT_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
# message kind → (the message element, the statement-like element within it)
_CAMT_KINDS = {
    "camt.052": ("BkToCstmrAcctRpt", "Rpt"),
    "camt.053": ("BkToCstmrStmt", "Stmt"),
    "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
}
# ISO bank transaction sub-families of a direct debit that came back (External Bank
# Transaction Code list): UPDD reversal due to a payment return, PRDD due to a payment
# reversal.
_RETURN_SUBFAMILIES = frozenset({"UPDD", "PRDD"})
# A return without a stated reason: ISO ExternalReturnReason "reason not specified".
_UNSPECIFIED_REASON = "MS03"
_AMOUNT = re.compile(r"\d{1,13}(\.\d{1,5})?")


def read_statement(xml: bytes) -> list[BankEntry]:
    """3.8.5 Manage Customer Billing / Collections (eTOM 1.1.1.8.5): the booked entries of
    a bank statement (camt.053), account report (camt.052) or debit/credit notification
    (camt.054, where banks report direct-debit returns), version 001.02 or later (the
    element paths that moved in 001.04 and 001.05 are read in both places).

    Read with lxml alone, with a parser that resolves no entity, loads no DTD and opens no
    network, and a file with a DOCTYPE is refused outright. pycamt 1.1.1 (pinned) was
    measured against what billing needs and falls short: it reads only Stmt/Rpt, so no
    camt.054; it reads neither the return reason (RtrInf/Rsn/Cd) nor the charges (Chrgs);
    and in camt.053.001.02 its transaction amount ``TxDtls//Amt`` and indicator
    ``TxDtls//CdtDbtInd`` pick the first descendant, which is the instructed amount or a
    charge's. Its references and remittance agree with ours (the tests compare them).

    Only booked entries (status BOOK) count: pending and information-only entries are no
    money yet. Credits are positive, debits negative. A debit is a returned direct debit
    when it states a return reason, is a reversal (RvslInd) or carries the bank
    transaction code of one (sub-family UPDD or PRDD); a return without a reason gets
    MS03 (reason not specified). Raises InvalidRequest naming the element and the entry
    when the file is not such a document or misses what an entry must state.
    """
    root = _parse_bank_file(xml)
    namespace = etree.QName(root).namespace or ""
    version = namespace.removeprefix(_CAMT_PREFIX)
    kind = version[:8]
    if not namespace.startswith(_CAMT_PREFIX) or kind not in _CAMT_KINDS:
        raise InvalidRequest(
            "The bank file is not a camt.052, camt.053 or camt.054 document: its root "
            f"element is {etree.QName(root).localname!r} in namespace {namespace!r}. "
            "Export the account statement as camt.053 (or the notification as camt.054)."
        )
    reader = _CamtReader(namespace, version)
    message_tag, container_tag = _CAMT_KINDS[kind]
    message = reader.child(root, message_tag)
    if message is None:
        raise InvalidRequest(f"The {version} file has no {message_tag} element under Document.")
    containers = reader.children(message, container_tag)
    if not containers:
        raise InvalidRequest(f"The {version} file has no {container_tag} element: nothing to read.")
    entries: list[BankEntry] = []
    for number, container in enumerate(containers, start=1):
        entries.extend(reader.container(container, f"{container_tag} {number}"))
    return entries


def _safe_parser() -> Any:
    # A parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _parse_bank_file(xml: bytes) -> Any:
    if not isinstance(xml, bytes) or not xml.strip():
        raise InvalidRequest("The bank file is empty: upload the camt.053 or camt.054 XML file.")
    # Refused before parsing too, so that no entity definition is even read.
    head = xml[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in xml.upper():
        raise _doctype_refused()
    try:
        root = etree.fromstring(xml, _safe_parser())
    except etree.XMLSyntaxError as error:
        raise InvalidRequest(
            f"The bank file is not well-formed XML (line {error.lineno}): {error.msg}. "
            "Upload the file exactly as the bank delivered it."
        ) from error
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_refused()
    return root


def _doctype_refused() -> InvalidRequest:
    return InvalidRequest(
        "The bank file contains a DOCTYPE or entity declarations, which ISO 20022 files "
        "never have; it is refused unread (entities can read local files or explode in "
        "size). Upload the file exactly as the bank delivered it."
    )


@dataclass(frozen=True)
class _Booking:
    """What an entry (Ntry) states for the transactions it books."""

    entry: Any
    entry_id: str
    day: date
    amount: Decimal
    currency: str
    sign: int  # 1 credit, -1 debit
    reversal: bool
    own_iban: str | None


class _CamtReader:
    """Walks one camt document whose elements all live in ``namespace``."""

    def __init__(self, namespace: str, version: str) -> None:
        self.ns = {"c": namespace}
        self.version = version

    def child(self, element: Any, tag: str) -> Any:
        return element.find(f"c:{tag}", self.ns)

    def children(self, element: Any, path: str) -> list[Any]:
        return list(element.findall(self.path(path), self.ns))

    @staticmethod
    def path(path: str) -> str:
        return "/".join(f"c:{step}" for step in path.split("/"))

    def find(self, element: Any, path: str) -> Any:
        return element.find(self.path(path), self.ns)

    def text(self, element: Any, path: str) -> str | None:
        found = self.find(element, path)
        if found is None or found.text is None:
            return None
        value: str = found.text.strip()
        return value or None

    def texts(self, element: Any, path: str) -> list[str]:
        found = element.findall(self.path(path), self.ns)
        return [item.text.strip() for item in found if item.text and item.text.strip()]

    # -- the statement (Stmt, Rpt, Ntfctn) ---------------------------------------------

    def container(self, container: Any, label: str) -> list[BankEntry]:
        container_id = self.text(container, "Id")
        if container_id is None:
            raise InvalidRequest(f"{self.version}: {label} has no Id; the bank file is incomplete.")
        own_iban = self.text(container, "Acct/Id/IBAN")
        entries: list[BankEntry] = []
        for number, entry in enumerate(self.children(container, "Ntry"), start=1):
            where = f"{self.version} {label} (Id {container_id}), entry {number}"
            entries.extend(self.entry(entry, where, f"{container_id}/{number}", own_iban))
        return entries

    # -- one entry (Ntry) and its transactions (NtryDtls/TxDtls) -------------------------

    def entry(
        self, entry: Any, where: str, fallback_id: str, own_iban: str | None
    ) -> list[BankEntry]:
        reference = self.text(entry, "AcctSvcrRef") or self.text(entry, "NtryRef")
        if reference:
            where = f"{where} (reference {reference})"
        status = self.text(entry, "Sts/Cd") or self.text(entry, "Sts")
        if status is None:
            raise InvalidRequest(f"{where}: no status (Ntry/Sts); the bank file is incomplete.")
        if status != "BOOK":
            return []  # pending (PDNG) or for information (INFO): no money moved yet
        amount, currency = self.amount(entry, "Amt", where)
        if amount is None or currency is None:
            raise InvalidRequest(f"{where}: no amount (Ntry/Amt with its Ccy).")
        sign = self.sign(entry, where)
        if sign is None:
            raise InvalidRequest(f"{where}: no credit/debit indicator (Ntry/CdtDbtInd).")
        booked_on = self.day(entry, "BookgDt", where) or self.day(entry, "ValDt", where)
        if booked_on is None:
            raise InvalidRequest(f"{where}: no booking date (Ntry/BookgDt) nor value date.")
        booking = _Booking(
            entry=entry,
            entry_id=reference or fallback_id,
            day=booked_on,
            amount=amount,
            currency=currency,
            sign=sign,
            reversal=(self.text(entry, "RvslInd") or "").lower() in ("true", "1"),
            own_iban=own_iban,
        )
        transactions = self.children(entry, "NtryDtls/TxDtls")
        if len(transactions) <= 1:
            only = transactions[0] if transactions else None
            return [self.transaction(booking, only, where)]
        # A batch booking: one sum on the account, one BankEntry per transaction.
        result = []
        for number, transaction in enumerate(transactions, start=1):
            tx_where = f"{where}, transaction {number}"
            tx_amount, tx_currency = self.transaction_amount(transaction, tx_where)
            if tx_amount is None or tx_currency is None:
                raise InvalidRequest(
                    f"{tx_where}: the entry books {len(transactions)} transactions as one "
                    "sum but this one states no amount (TxDtls/AmtDtls/TxAmt/Amt)."
                )
            part = replace(
                booking,
                entry_id=f"{booking.entry_id}/{number}",
                amount=tx_amount,
                currency=tx_currency,
                sign=self.sign(transaction, tx_where) or sign,
            )
            result.append(self.transaction(part, transaction, tx_where, alone=False))
        return result

    def transaction(
        self, booking: _Booking, transaction: Any | None, where: str, *, alone: bool = True
    ) -> BankEntry:
        """One BankEntry: ``transaction`` is the entry's TxDtls (None when the bank gave
        no details); where the entry has only this transaction, what the entry states
        (bank transaction code, charges) counts for it too."""
        scopes = [
            scope for scope in (transaction, booking.entry if alone else None) if scope is not None
        ]
        reason = None
        if transaction is not None:
            reason = self.text(transaction, "RtrInf/Rsn/Cd") or self.text(
                transaction, "RtrInf/Rsn/Prtry"
            )
        subfamilies = {self.text(scope, "BkTxCd/Domn/Fmly/SubFmlyCd") for scope in scopes}
        is_return = booking.sign < 0 and (
            reason is not None or booking.reversal or bool(subfamilies & _RETURN_SUBFAMILIES)
        )
        amount, fee = booking.amount, None
        if is_return:
            reason = reason or _UNSPECIFIED_REASON
            charges = [self.charges(scope, where) for scope in scopes]
            fee = next((charge for charge in charges if charge is not None), None)
            instructed = None
            if transaction is not None:
                instructed, _ = self.amount(transaction, "AmtDtls/InstdAmt/Amt", where)
            if instructed is not None:
                amount = instructed  # the collection itself; the entry may add the fee
            elif fee is not None and self.charges_included(scopes):
                amount = booking.amount - fee
        else:
            reason = None
        end_to_end = mandate = name = iban = remittance = None
        if transaction is not None:
            end_to_end = self.text(transaction, "Refs/EndToEndId")
            # SEPA's placeholder for a transfer the payer gave no reference
            if end_to_end == "NOTPROVIDED":
                end_to_end = None
            mandate = self.text(transaction, "Refs/MndtId")
            name, iban = self.counterparty(
                transaction, booking.sign > 0 or is_return, booking.own_iban
            )
            remittance = self.remittance(transaction)
        return BankEntry(
            entry_id=booking.entry_id,
            booking_date=booking.day,
            amount=amount if booking.sign > 0 else -amount,
            currency=booking.currency,
            counterparty_name=name,
            counterparty_iban=iban,
            remittance=remittance,
            end_to_end_id=end_to_end,
            mandate_reference=mandate,
            return_reason=reason,
            fee=fee,
        )

    # -- the fields ----------------------------------------------------------------------

    def amount(self, element: Any, path: str, where: str) -> tuple[Decimal | None, str | None]:
        found = self.find(element, path)
        if found is None:
            return None, None
        raw = (found.text or "").strip()
        currency = found.get("Ccy")
        if not _AMOUNT.fullmatch(raw):
            raise InvalidRequest(
                f"{where}: the amount {raw!r} in {path} is not a decimal number with a "
                "point (e.g. 119.00)."
            )
        if not currency or not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidRequest(f'{where}: the amount in {path} has no currency (Ccy="EUR").')
        try:
            return Decimal(raw), currency
        except InvalidOperation as error:  # pragma: no cover - the pattern admits only numbers
            raise InvalidRequest(f"{where}: the amount {raw!r} is not a number.") from error

    def transaction_amount(self, transaction: Any, where: str) -> tuple[Decimal | None, str | None]:
        # TxDtls/Amt from version 001.04 on; AmtDtls before (TxAmt is what was booked)
        for path in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt"):
            amount, currency = self.amount(transaction, path, where)
            if amount is not None:
                return amount, currency
        return None, None

    def sign(self, element: Any, where: str) -> int | None:
        indicator = self.text(element, "CdtDbtInd")
        if indicator is None:
            return None
        if indicator not in ("CRDT", "DBIT"):
            raise InvalidRequest(
                f"{where}: CdtDbtInd is {indicator!r}, neither CRDT (credit) nor DBIT (debit)."
            )
        return 1 if indicator == "CRDT" else -1

    def day(self, entry: Any, element: str, where: str) -> date | None:
        raw = self.text(entry, f"{element}/Dt") or self.text(entry, f"{element}/DtTm")
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError as error:
            raise InvalidRequest(
                f"{where}: the date {raw!r} in Ntry/{element} is not an ISO date (YYYY-MM-DD)."
            ) from error

    def charges(self, scope: Any | None, where: str) -> Decimal | None:
        """The bank's charges: Chrgs/Amt (001.02, repeated per charge), or from 001.03 on
        Chrgs/TtlChrgsAndTaxAmt, else the sum of Chrgs/Rcrd/Amt."""
        if scope is None:
            return None
        total = None
        for charge in self.children(scope, "Chrgs"):
            stated, _ = self.amount(charge, "TtlChrgsAndTaxAmt", where)
            if stated is None:
                stated, _ = self.amount(charge, "Amt", where)
            if stated is None:
                records = [
                    self.amount(record, "Amt", where)[0] for record in self.children(charge, "Rcrd")
                ]
                stated = (
                    sum((value for value in records if value is not None), Decimal(0))
                    if records
                    else None
                )
            if stated is not None:
                total = stated if total is None else total + stated
        return total

    def charges_included(self, scopes: list[Any]) -> bool:
        """From 001.03 on a charge record says whether the booked amount includes it
        (ChrgInclInd); 001.02 cannot say, and then the booked amount is the collection."""
        for scope in scopes:
            for value in self.texts(scope, "Chrgs/Rcrd/ChrgInclInd"):
                return value.lower() in ("true", "1")
        return False

    def party(self, transaction: Any, role: str) -> tuple[str | None, str | None]:
        # 001.02 to 001.04: RltdPties/Dbtr/Nm; from 001.05 on the party sits in Dbtr/Pty
        name = self.text(transaction, f"RltdPties/{role}/Nm") or self.text(
            transaction, f"RltdPties/{role}/Pty/Nm"
        )
        iban = self.text(transaction, f"RltdPties/{role}Acct/Id/IBAN")
        return name, iban

    def counterparty(
        self, transaction: Any, payer_first: bool, own_iban: str | None
    ) -> tuple[str | None, str | None]:
        """The other side: the debtor of money received (or of a collection that came
        back), the creditor of money paid; whichever is not the provider's own account."""
        roles = ("Dbtr", "Cdtr") if payer_first else ("Cdtr", "Dbtr")
        for role in roles:
            name, iban = self.party(transaction, role)
            if (name or iban) and (iban is None or own_iban is None or iban != own_iban):
                return name, iban
        return None, None

    def remittance(self, transaction: Any) -> str | None:
        parts = self.texts(transaction, "RmtInf/Ustrd") + self.texts(
            transaction, "RmtInf/Strd/CdtrRefInf/Ref"
        )
        return " ".join(parts) if parts else None
