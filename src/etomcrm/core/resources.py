"""The TMF resource life cycle, once for every API: create, read, list, patch, delete.

Each resource kind (customer, geographicSite, productOffering, ...) is a
:class:`ResourceKind` declared by its area package. This module applies what every
kind shares: validation against the official schema, references that must exist,
customer scoping, roles, ETags, audit records, outbox events and idempotent creates.
Areas add their own rules by overriding the hooks of ``ResourceKind``.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from sqlalchemy import event, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etomcrm.core.bus import DomainEvent, record
from etomcrm.core.clock import iso
from etomcrm.core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    UnknownReference,
)
from etomcrm.core.events import emit_event
from etomcrm.core.json_filters import document_path_equals
from etomcrm.core.models import NAME_COLUMN_LENGTH, AuditRecord, IdempotencyRecord
from etomcrm.core.tmf_schemas import JsonDict, TmfDocument, schema_errors
from etomcrm.core.totals import forget_totals
from etomcrm.db import new_id, utcnow
from etomcrm.security.service import STAFF_ROLES, Principal, Role

READ, CREATE, UPDATE, DELETE = "read", "create", "update", "delete"
RESERVED_QUERY = frozenset({"fields", "offset", "limit"})
# What every TMF resource carries, whether or not its definition in the document lists
# it (TMF683, TMF637, TMF667 and the v2 SLA documents leave the @-attributes out).
COMMON_ATTRIBUTES = frozenset({"id", "href", "@type", "@baseType", "@schemaLocation"})
# Each value of a filter is a clause of its own: bounded, so one query string cannot
# build a statement the database refuses (SQLite's expression depth) or chokes on.
MAX_FILTERS = 20
MAX_FILTER_VALUES = 100
# Attributes only the server sets; a client's value is replaced, not trusted.
SERVER_SET = ("id", "href")


@dataclass(frozen=True)
class RefSpec:
    """Where a kind refers to other resources, and what they are when not said.

    ``path`` is a dotted path; ``[]`` marks a list (``relatedParty[]``). ``default_kind``
    is the kind looked up when the reference has no ``@referredType``; ``None`` means only
    references that name a type we host are checked (others point to other systems).
    """

    path: str
    default_kind: str | None = None


# The schemas ResourceKind.extensions names its attributes by: a filter needs to know
# only where a path enters a list.
TEXT: JsonDict = {"type": "string"}
INSTANT: JsonDict = {"type": "string", "format": "date-time"}
NUMBER: JsonDict = {"type": "number"}
OBJECT: JsonDict = {"type": "object"}
LIST: JsonDict = {"type": "array", "items": {"type": "object"}}
TEXT_LIST: JsonDict = {"type": "array", "items": TEXT}


@dataclass(frozen=True)
class ResourceChanged(DomainEvent):
    """A TMF resource was created, changed or deleted (``change``: create, update, state,
    delete) through this module; ``owner`` is the customer it belongs to, if any."""

    kind: str
    resource_id: str
    owner: str | None
    change: str


@dataclass
class ResourceKind:
    """One TMF resource type as etomcrm stores and serves it."""

    name: str  # path segment and event prefix, e.g. "customer"
    type_name: str  # @type and schema definition, e.g. "Customer"
    doc: TmfDocument
    row: Any  # the ORM class (TmfResourceRow subclass)
    read_roles: frozenset[Role] = STAFF_ROLES
    write_roles: frozenset[Role] = frozenset({Role.ADMIN})
    customer_operations: frozenset[str] = frozenset()
    # True when a resource belongs to one customer (scoped); False for the provider's
    # own data every caller with read access sees (the catalog).
    customer_owned: bool = True
    refs: tuple[RefSpec, ...] = ()
    status_attribute: str | None = "status"
    name_attribute: str | None = "name"
    # False for records only etomcrm writes (process flows): no POST, PATCH or DELETE.
    writable: bool = True
    # False for records kept as created (risk assessments): POST, but no PATCH or DELETE.
    changeable: bool = True
    # For the record of business (orders, tickets, messages, interactions, bills): never
    # deleted, only closed or cancelled through its life cycle; says how, for the 405.
    ended_not_deleted: str | None = None
    # Attributes etomcrm adds to the official resource, each with its JSON schema, so
    # that lists filter on them as on the official ones (a work list: productOrder's
    # inJeopardy, troubleTicket's escalation.target).
    extensions: Mapping[str, JsonDict] = field(default_factory=dict)
    # Attributes only the area's own service functions write (``patch(by_service=True)``),
    # each with why, for the message a request that changes one gets.
    server_set: Mapping[str, str] = field(default_factory=dict)

    registry: ClassVar[dict[str, ResourceKind]] = {}
    by_type: ClassVar[dict[str, ResourceKind]] = {}
    _required: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._required = self.doc.required(self.type_name)

    @classmethod
    def register(cls, kind: ResourceKind) -> None:
        """Make ``kind`` known by name and type (references to it are then checked);
        the composition root registers every kind etomcrm serves."""
        cls.registry[kind.name] = kind
        cls.by_type[kind.type_name] = kind

    # ----- hooks an area overrides --------------------------------------------------

    def owner_for(
        self, session: Session, principal: Principal, body: JsonDict, current: str | None
    ) -> str | None:
        """The customer this resource belongs to (None: the provider's own).

        ``current`` is the owner before a change (None on create): by default a resource
        a customer creates is its own, and a change keeps the owner it had.
        """
        return principal.customer_id if principal.is_customer else current

    def before_save(
        self, session: Session, principal: Principal, body: JsonDict, old: JsonDict | None
    ) -> None:
        """Domain rules on a create (``old`` is None) or a change; raise to refuse."""

    def after_save(
        self, session: Session, principal: Principal, body: JsonDict, owner: str | None
    ) -> None:
        """Consequences in other resources, in the same transaction."""

    def before_delete(self, session: Session, principal: Principal, body: JsonDict) -> None:
        """Refuse a delete that would leave others dangling."""

    def row_columns(self, session: Session, body: JsonDict) -> dict[str, Any]:
        """Columns of a new row beyond the shared ones, for a kind whose queries need
        more (an alarm: the object it is about); may also replace the row's ``id``."""
        return {}

    # ----- shared machinery ------------------------------------------------------------

    @property
    def path(self) -> str:
        return f"{self.doc.base_path}/{self.name}"

    @property
    def has_create_schema(self) -> bool:
        return f"{self.type_name}_Create" in self.doc.definitions

    @property
    def properties(self) -> dict[str, JsonDict]:
        return self.doc.properties(self.type_name)

    @property
    def required(self) -> list[str]:
        return self._required

    def has_attribute(self, name: str) -> bool:
        """Whether ``name`` is an attribute of this kind (for ``fields`` and filters)."""
        return name in COMMON_ATTRIBUTES or name in self.properties or name in self.extensions

    def event_type(self, change: str) -> str | None:
        """The document's name for an event, or None where the API defines none."""
        candidates = {
            "create": ["CreateEvent"],
            "update": ["AttributeValueChangeEvent"],
            "state": ["StateChangeEvent", "StatusChangeEvent"],
            "delete": ["DeleteEvent"],
        }[change]
        for suffix in candidates:
            name = f"{self.type_name}{suffix}"
            if name in self.doc.definitions:
                return name
        return None

    def authorize(self, principal: Principal, operation: str) -> None:
        if not self.changeable and operation in (UPDATE, DELETE):
            raise MethodNotAllowed(
                f"a {self.name} is a record kept as created: it is never changed or deleted"
            )
        if operation == DELETE and self.ended_not_deleted:
            raise MethodNotAllowed(
                f"a {self.name} is part of the record of business and is never deleted: "
                f"{self.ended_not_deleted}"
            )
        if principal.is_customer:
            allowed = operation in self.customer_operations
        elif operation == READ:
            allowed = principal.role in self.read_roles
        else:
            allowed = principal.role in self.write_roles
        if not allowed:
            raise Forbidden(
                f"the role {principal.role.value!r} may not {operation} {self.name} resources"
            )

    def scoped(self, principal: Principal, stmt: Any) -> Any:
        """Restrict a query to what the principal may see."""
        if principal.is_customer and self.customer_owned:
            return stmt.where(self.row.owner_customer_id == principal.customer_id)
        return stmt


def href_for(kind: ResourceKind, base_url: str, resource_id: str) -> str:
    return f"{base_url}{kind.path}/{resource_id}"


def render(
    kind: ResourceKind, body: JsonDict, base_url: str, fields: Sequence[str] | None = None
) -> JsonDict:
    """The stored document as the client sees it: with href, optionally projected."""
    out = dict(body)
    out["href"] = href_for(kind, base_url, body["id"])
    if fields:
        keep = {"id", "href", "@type", *kind.required, *fields}
        out = {k: v for k, v in out.items() if k in keep}
    return out


def etag(version: int) -> str:
    return f'"{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is None:
        return
    wanted = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    if "*" not in wanted and str(version) not in wanted:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {etag(version)}; "
            "read the resource again and reapply your change"
        )


def validate_against(doc: TmfDocument, definition: str, body: Any, what: str) -> None:
    """Refuse a body that breaks the official schema, saying where and how."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"the {what} must be a JSON object")
    errors = schema_errors(doc.validator(definition), body)
    if errors:
        raise InvalidRequest(
            f"the {what} does not match the {doc.code} {definition} schema: " + "; ".join(errors)
        )


def _validate(kind: ResourceKind, definition: str, body: Any, what: str) -> None:
    validate_against(kind.doc, definition, body, what)


def _iter_refs(body: JsonDict, path: str) -> Iterable[JsonDict]:
    parts = path.split(".")
    nodes: list[Any] = [body]
    for part in parts:
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        nxt: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict) or key not in node:
                continue
            value = node[key]
            if many and isinstance(value, list):
                nxt.extend(value)
            elif not many:
                nxt.append(value)
        nodes = nxt
    return [n for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)]


def check_references(
    session: Session, kind: ResourceKind, principal: Principal, body: JsonDict
) -> None:
    """Every reference to a resource etomcrm hosts must exist and be visible to the caller.

    One query per referenced kind, however many references the body holds.
    """
    wanted: dict[str, set[str]] = {}
    labels: dict[tuple[str, str], str] = {}
    for spec in kind.refs:
        for ref in _iter_refs(body, spec.path):
            referred = ref.get("@referredType")
            target_names: list[str]
            if isinstance(referred, str) and referred in ResourceKind.by_type:
                target_names = [ResourceKind.by_type[referred].name]
            elif referred is None and spec.default_kind == "party":
                target_names = ["individual", "organization"]
            elif referred is None and spec.default_kind:
                target_names = [spec.default_kind]
            else:
                continue  # a resource of another system: not ours to check
            key = "|".join(target_names)
            wanted.setdefault(key, set()).add(ref["id"])
            labels[(key, ref["id"])] = f"{spec.path.replace('[]', '')} {ref['id']}"
    for key, ids in wanted.items():
        found: set[str] = set()
        for target_name in key.split("|"):
            target = ResourceKind.registry[target_name]
            stmt = target.scoped(principal, select(target.row.id).where(target.row.id.in_(ids)))
            found.update(session.scalars(stmt))
        missing = sorted(ids - found)
        if missing:
            names = ", ".join(labels[(key, m)] for m in missing)
            raise UnknownReference(
                f"referenced resource not found: {names} ({key.replace('|', ' or ')})"
            )


def _stamp_times(kind: ResourceKind, body: JsonDict, creating: bool) -> None:
    now = iso(utcnow())
    props = kind.properties
    if "lastUpdate" in props:
        body["lastUpdate"] = now
    if creating and "creationDate" in props and "creationDate" not in body:
        body["creationDate"] = now


def _columns(kind: ResourceKind, body: JsonDict) -> dict[str, Any]:
    name = body.get(kind.name_attribute) if kind.name_attribute else None
    status = body.get(kind.status_attribute) if kind.status_attribute else None
    return {
        "name": name[:NAME_COLUMN_LENGTH] if isinstance(name, str) else None,
        "status": status[:100] if isinstance(status, str) else None,
        "at_type": str(body.get("@type", kind.type_name))[:100],
    }


def record_audit(
    session: Session,
    principal: Principal,
    action: str,
    kind: ResourceKind,
    resource_id: str,
    changes: JsonDict,
) -> None:
    session.add(
        AuditRecord(
            actor=principal.name,
            actor_role=principal.role.value,
            actor_customer_id=principal.customer_id,
            action=action,
            resource_type=kind.type_name,
            resource_id=resource_id,
            changes=changes,
        )
    )


def _diff(old: JsonDict, new: JsonDict) -> JsonDict:
    keys = sorted(set(old) | set(new))
    return {k: {"old": old.get(k), "new": new.get(k)} for k in keys if old.get(k) != new.get(k)}


def _request_hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def create(
    session: Session,
    kind: ResourceKind,
    principal: Principal,
    payload: Any,
    *,
    idempotency_key: str | None = None,
    base_url: str = "",
) -> tuple[JsonDict, int, bool]:
    """Create a resource; returns (body, version, replayed)."""
    kind.authorize(principal, CREATE)
    request_hash = ""
    if idempotency_key is not None:
        request_hash = _request_hash(payload)
        previous = session.get(IdempotencyRecord, (principal.id, idempotency_key))
        if previous is not None:
            return _replay(previous, kind, request_hash)
    definition = f"{kind.type_name}_Create" if kind.has_create_schema else kind.type_name
    _validate(kind, definition, payload, "request body")
    body: JsonDict = {k: v for k, v in payload.items() if k not in SERVER_SET}
    body["id"] = new_id()
    body.setdefault("@type", kind.type_name)
    _stamp_times(kind, body, creating=True)
    kind.before_save(session, principal, body, None)
    check_references(session, kind, principal, body)
    owner = kind.owner_for(session, principal, body, None)
    columns = {"id": body["id"], **_columns(kind, body), **kind.row_columns(session, body)}
    row = kind.row(owner_customer_id=owner, body=body, version=1, **columns)
    session.add(row)
    kind.after_save(session, principal, body, owner)
    _forget_totals_on_commit(session, kind)
    record_audit(session, principal, "create", kind, body["id"], {"created": body})
    emit_change(session, kind, "create", body, owner, base_url)
    if idempotency_key is not None:
        session.add(
            IdempotencyRecord(
                principal_id=principal.id,
                key=idempotency_key,
                request_path=kind.path,
                request_hash=request_hash,
                status_code=201,
                response_body=body,
                resource_type=kind.type_name,
                resource_id=body["id"],
            )
        )
        try:
            session.flush()
        except IntegrityError:
            # A concurrent retry with the same key won the race: answer with its result.
            session.rollback()
            previous = session.get(IdempotencyRecord, (principal.id, idempotency_key))
            if previous is None:
                raise
            return _replay(previous, kind, request_hash)
    return body, 1, False


def _replay(
    previous: IdempotencyRecord, kind: ResourceKind, request_hash: str
) -> tuple[JsonDict, int, bool]:
    if previous.request_path != kind.path or previous.request_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was used before with a different request; "
            "use a new key for a new request"
        )
    return previous.response_body, 1, True


def previous_answer(
    session: Session, principal: Principal, idempotency_key: str, path: str, payload: Any
) -> IdempotencyRecord | None:
    """The first answer to a POST (not a resource create) retried with the same
    ``Idempotency-Key``; a different request under the key is refused."""
    previous = session.get(IdempotencyRecord, (principal.id, idempotency_key))
    if previous is not None and (
        previous.request_path != path or previous.request_hash != _request_hash(payload)
    ):
        raise Conflict(
            "this Idempotency-Key was used before with a different request; "
            "use a new key for a new request"
        )
    return previous


def remember_answer(
    session: Session,
    principal: Principal,
    idempotency_key: str,
    path: str,
    payload: Any,
    answer: JsonDict,
    *,
    status_code: int,
    answer_type: str,
) -> None:
    """Keep the answer to a POST so that :func:`previous_answer` replays it."""
    session.add(
        IdempotencyRecord(
            principal_id=principal.id,
            key=idempotency_key,
            request_path=path,
            request_hash=_request_hash(payload),
            status_code=status_code,
            response_body=answer,
            resource_type=answer_type,
            resource_id=str(answer.get("id", "")),
        )
    )


def _load(
    session: Session,
    kind: ResourceKind,
    principal: Principal,
    resource_id: str,
    *,
    lock: bool = False,
) -> Any:
    stmt = kind.scoped(principal, select(kind.row).where(kind.row.id == resource_id))
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"no {kind.name} with id {resource_id}")
    return row


def get(
    session: Session, kind: ResourceKind, principal: Principal, resource_id: str
) -> tuple[JsonDict, int]:
    """Read one resource the principal may see; returns (body, version)."""
    kind.authorize(principal, READ)
    stmt = kind.scoped(
        principal, select(kind.row.body, kind.row.version).where(kind.row.id == resource_id)
    )
    found = session.execute(stmt).first()
    if found is None:
        raise NotFound(f"no {kind.name} with id {resource_id}")
    return found[0], found[1]


def _filter_clause(kind: ResourceKind, dialect: str, attribute: str, values: list[str]) -> Any:
    path = attribute.split(".")
    if not kind.has_attribute(path[0]):
        raise InvalidRequest(
            f"cannot filter by {attribute!r}: {kind.type_name} has no attribute {path[0]!r}"
        )
    clauses = []
    for value in values:
        if path == ["id"]:
            clauses.append(kind.row.id == value)
        elif path == [kind.name_attribute] and len(value) < NAME_COLUMN_LENGTH:
            clauses.append(kind.row.name == value)
        elif path == [kind.status_attribute] and len(value) < 100:
            clauses.append(kind.row.status == value)
        elif path == ["@type"]:
            clauses.append(kind.row.at_type == value)
        else:
            clauses.append(
                document_path_equals(
                    dialect,
                    kind.row.__tablename__,
                    kind.doc,
                    kind.type_name,
                    path,
                    value,
                    extensions=kind.extensions,
                )
            )
    return or_(*clauses)


def where_attribute(session: Session, kind: ResourceKind, attribute: str, value: str) -> Any:
    """The clause a list filter ``?attribute=value`` applies, for a service's own query."""
    dialect = session.get_bind().dialect.name
    return _filter_clause(kind, dialect, attribute, [value])


def list_statements(
    kind: ResourceKind,
    principal: Principal,
    filters: dict[str, list[str]],
    dialect: str,
    offset: int,
    limit: int,
    columns: Sequence[Any],
) -> tuple[Any, Any]:
    """The count and page statements of a list; the caller may skip the count.

    The page is a deferred join: the ids of the page are found on the primary-key index
    alone, then only those rows are read, so a deep offset does not read the bodies of
    every row it skips.
    """
    kind.authorize(principal, READ)
    conditions = []
    if len(filters) > MAX_FILTERS:
        raise InvalidRequest(f"at most {MAX_FILTERS} attributes can be filtered on at once")
    for attribute, raw_values in filters.items():
        values = [v for raw in raw_values for v in raw.split(",")]
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidRequest(
                f"the filter on {attribute!r} lists {len(values)} values; at most "
                f"{MAX_FILTER_VALUES} are accepted (split the query)"
            )
        conditions.append(_filter_clause(kind, dialect, attribute, values))
    count_stmt = kind.scoped(principal, select(func.count()).select_from(kind.row))
    ids = kind.scoped(principal, select(kind.row.id))
    if conditions:
        count_stmt = count_stmt.where(*conditions)
        ids = ids.where(*conditions)
    page_ids = ids.order_by(kind.row.id).offset(offset).limit(limit)
    page_stmt = (
        select(*columns).where(kind.row.id.in_(page_ids.scalar_subquery())).order_by(kind.row.id)
    )
    return count_stmt, page_stmt


def total_key(
    kind: ResourceKind, principal: Principal, filters: dict[str, list[str]]
) -> tuple[Any, ...]:
    scope = principal.customer_id if principal.is_customer and kind.customer_owned else None
    return (kind.name, scope, tuple(sorted((k, tuple(v)) for k, v in filters.items())))


def list_resources(
    session: Session,
    kind: ResourceKind,
    principal: Principal,
    filters: dict[str, list[str]],
    offset: int,
    limit: int,
) -> tuple[list[JsonDict], int]:
    """One page of resources and the total matching; two queries whatever the page size.

    Filters are TMF attribute filters: ``status=active``, dotted paths into the document
    (``engagedParty.id=...``, ``relatedParty.id=...`` through lists); a comma or a
    repeated parameter means "any of".
    """
    dialect = session.get_bind().dialect.name
    count_stmt, page_stmt = list_statements(
        kind, principal, filters, dialect, offset, limit, [kind.row.body]
    )
    total = session.scalar(count_stmt) or 0
    items: list[JsonDict] = []
    if offset < total:
        items = list(session.scalars(page_stmt))
    return items, total


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patch(
    session: Session,
    kind: ResourceKind,
    principal: Principal,
    resource_id: str,
    changes: Any,
    *,
    if_match: str | None = None,
    base_url: str = "",
    by_service: bool = False,
) -> tuple[JsonDict, int]:
    """Apply a merge patch; returns (body, version). A lost update gets 412.

    ``by_service``: the area's own service function writes the kind's server-set
    attributes, which a request may not change."""
    kind.authorize(principal, UPDATE)
    row = _load(session, kind, principal, resource_id, lock=True)
    _check_if_match(if_match, row.version)
    if not isinstance(changes, dict):
        raise InvalidRequest("the patch must be a JSON object (application/merge-patch+json)")
    _validate(kind, f"{kind.type_name}_Patch", changes, "patch")
    old: JsonDict = row.body
    for attribute in SERVER_SET:
        changes.pop(attribute, None)
    if "@type" in changes and changes["@type"] != old.get("@type", kind.type_name):
        raise InvalidRequest(
            f"@type is fixed when a {kind.name} is created ({old.get('@type', kind.type_name)!r})"
        )
    body = merge_patch(old, changes)
    body["id"] = old["id"]
    if not _diff(old, body):
        return old, row.version  # nothing changes: no new version, audit or event
    _stamp_times(kind, body, creating=False)
    _validate(kind, kind.type_name, body, "patched resource")
    if not by_service:
        _refuse_server_set(kind, old, body)
    kind.before_save(session, principal, body, old)
    check_references(session, kind, principal, body)
    diff = _diff(old, body)
    owner = kind.owner_for(session, principal, body, row.owner_customer_id)
    row.body = body
    row.owner_customer_id = owner
    row.version += 1
    row.updated_at = utcnow()
    for column, value in _columns(kind, body).items():
        setattr(row, column, value)
    kind.after_save(session, principal, body, owner)
    _forget_totals_on_commit(session, kind)
    record_audit(session, principal, "update", kind, resource_id, diff)
    emit_change(session, kind, "update", body, owner, base_url)
    if kind.status_attribute and kind.status_attribute in diff:
        emit_change(session, kind, "state", body, owner, base_url)
    return body, row.version


def _refuse_server_set(kind: ResourceKind, old: JsonDict, body: JsonDict) -> None:
    for attribute, why in kind.server_set.items():
        if old.get(attribute) != body.get(attribute):
            raise InvalidRequest(f"{attribute} is set by etomcrm, not by a request: {why}")


def delete(
    session: Session,
    kind: ResourceKind,
    principal: Principal,
    resource_id: str,
    *,
    base_url: str = "",
) -> None:
    """Delete a resource; refused with 409 while others still depend on it."""
    kind.authorize(principal, DELETE)
    row = _load(session, kind, principal, resource_id, lock=True)
    kind.before_delete(session, principal, row.body)
    body, owner = row.body, row.owner_customer_id
    session.delete(row)
    _forget_totals_on_commit(session, kind)
    record_audit(session, principal, "delete", kind, resource_id, {"deleted": body})
    emit_change(session, kind, "delete", body, owner, base_url)


def _forget_totals_on_commit(session: Session, kind: ResourceKind) -> None:
    # After the commit, so no reader caches the old total between forget and commit.
    event.listen(session, "after_commit", lambda _s: forget_totals(kind.name), once=True)


def emit_change(
    session: Session,
    kind: ResourceKind,
    change: str,
    body: JsonDict,
    owner: str | None,
    base_url: str,
) -> None:
    # Every change, with or without a TMF event, is told on the bus too (the analytical
    # store keeps itself up to date from it).
    record(session, ResourceChanged(kind.name, str(body["id"]), owner, change))
    event_type = kind.event_type(change)
    if event_type is None:
        return
    emit_event(
        session,
        api=kind.doc.code,
        event_type=event_type,
        resource_type=kind.type_name,
        resource_id=body["id"],
        owner_customer_id=owner,
        event={kind.name: render(kind, body, base_url)},
    )
