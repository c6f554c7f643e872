"""The official TM Forum v4 documents, as validators and as OpenAPI 3.1 components.

The Swagger 2 documents ship inside the package (``api/tmf_documents``, copied
unchanged from ``shared/tmf-openapi``); requests are validated against them and the
service's own OpenAPI document is built from them, so there is one source of truth.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import jsonschema_rs

JsonDict = dict[str, Any]


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out: JsonDict = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/definitions/"):
                out[key] = "#/components/schemas/" + prefix + value.removeprefix("#/definitions/")
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, prefix) for item in node]
    return node


@dataclass(frozen=True)
class TmfDocument:
    """One official Open API document (e.g. TMF629 Customer)."""

    code: str
    filename: str
    base_path: str
    raw: JsonDict = field(repr=False, compare=False)

    @classmethod
    def load(cls, code: str, filename: str, base_path: str) -> TmfDocument:
        text = resources.files("etomcrm.api.tmf_documents").joinpath(filename).read_text("utf-8")
        return cls(code=code, filename=filename, base_path=base_path, raw=json.loads(text))

    @property
    def definitions(self) -> dict[str, JsonDict]:
        return self.raw["definitions"]  # type: ignore[no-any-return]

    def component_name(self, definition: str) -> str:
        return f"{self.code}_{definition}"

    def ref(self, definition: str) -> JsonDict:
        return {"$ref": "#/components/schemas/" + self.component_name(definition)}

    def required(self, definition: str) -> list[str]:
        return list(self.definitions[definition].get("required", []))

    def properties(self, definition: str) -> dict[str, JsonDict]:
        return dict(self.definitions[definition].get("properties", {}))

    def patch_definition(self, resource: str) -> JsonDict:
        """The ``X_Update`` schema as served for merge-patch.

        A merge patch sends only what changes, so nothing is required; ``null`` removes an
        attribute (RFC 7396), so attributes the full resource does not require accept
        null. The official ``X_Update`` of some documents lists required attributes,
        which contradicts merge-patch; the merged resource is still validated whole.
        """
        update = copy.deepcopy(self.definitions.get(f"{resource}_Update", {"type": "object"}))
        update.pop("required", None)
        create = f"{resource}_Create"
        # TMF623 v2 has no Sla_Create: its resources are made by the provider only.
        must_stay = set(self.required(resource)) | set(
            self.required(create) if create in self.definitions else ()
        )
        props = update.get("properties", {})
        for name, schema in list(props.items()):
            if name not in must_stay:
                props[name] = {"anyOf": [schema, {"type": "null"}]}
        return update

    @cached_property
    def components(self) -> dict[str, JsonDict]:
        """Every definition as an OpenAPI 3.1 component, names prefixed by API code."""
        prefix = f"{self.code}_"
        out = {
            prefix + name: _rewrite_refs(schema, prefix)
            for name, schema in self.definitions.items()
        }
        for name in self.definitions:
            if name.endswith("_Update"):
                resource = name.removesuffix("_Update")
                out[prefix + f"{resource}_Patch"] = _rewrite_refs(
                    self.patch_definition(resource), prefix
                )
        return out

    def validator(self, definition: str) -> jsonschema_rs.Validator:
        return _validator(self, definition)

    def patch_validator(self, resource: str) -> jsonschema_rs.Validator:
        return _validator(self, f"{resource}_Patch")


_VALIDATORS: dict[tuple[str, str], jsonschema_rs.Validator] = {}


def _validator(doc: TmfDocument, definition: str) -> jsonschema_rs.Validator:
    key = (doc.code, definition)
    validator = _VALIDATORS.get(key)
    if validator is None:
        definitions = dict(doc.definitions)
        if definition.endswith("_Patch"):
            definitions[definition] = doc.patch_definition(definition.removesuffix("_Patch"))
        root = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        validator = jsonschema_rs.Draft4Validator(root, validate_formats=True)
        _VALIDATORS[key] = validator
    return validator


def schema_errors(validator: jsonschema_rs.Validator, instance: Any, limit: int = 10) -> list[str]:
    """Readable messages, each naming where in the body the problem is."""
    messages = []
    for error in validator.iter_errors(instance):
        where = "/".join(str(p) for p in error.instance_path) or "(body)"
        messages.append(f"{where}: {error.message}")
        if len(messages) >= limit:
            break
    return messages


PARTY = TmfDocument.load("TMF632", "TMF632-Party-v4.0.0.swagger.json", "/tmf-api/party/v4")
CUSTOMER = TmfDocument.load(
    "TMF629", "TMF629-Customer-v4.0.0.swagger.json", "/tmf-api/customerManagement/v4"
)
GEOGRAPHIC_SITE = TmfDocument.load(
    "TMF674",
    "TMF674-GeographicSite-v4.0.0.swagger.json",
    "/tmf-api/geographicSiteManagement/v4",
)
PARTY_INTERACTION = TmfDocument.load(
    "TMF683", "TMF683-PartyInteraction-v4.0.0.swagger.json", "/tmf-api/partyInteraction/v4"
)
PRODUCT_CATALOG = TmfDocument.load(
    "TMF620",
    "TMF620-ProductCatalog-v4.0.0.swagger.json",
    "/tmf-api/productCatalogManagement/v4",
)
STOCK = TmfDocument.load("TMF687", "TMF687-Stock-v4.0.0.swagger.json", "/tmf-api/stock/v4")
PRODUCT_ORDERING = TmfDocument.load(
    "TMF622",
    "TMF622-ProductOrdering-v4.0.0.swagger.json",
    "/tmf-api/productOrderingManagement/v4",
)
PRODUCT_INVENTORY = TmfDocument.load(
    "TMF637", "TMF637-ProductInventory-v4.0.0.swagger.json", "/tmf-api/productInventory/v4"
)
SERVICE_ORDERING = TmfDocument.load(
    "TMF641", "TMF641-ServiceOrdering-v4.0.0.swagger.json", "/tmf-api/serviceOrdering/v4"
)
QUOTE = TmfDocument.load(
    "TMF648", "TMF648-Quote-v4.0.0.swagger.json", "/tmf-api/quoteManagement/v4"
)
DOCUMENT = TmfDocument.load("TMF667", "TMF667-Document-v4.0.0.swagger.json", "/tmf-api/document/v4")
PRODUCT_OFFERING_QUALIFICATION = TmfDocument.load(
    "TMF679",
    "TMF679-ProductOfferingQualification-v4.0.0.swagger.json",
    "/tmf-api/productOfferingQualification/v4",
)
# The official document's basePath is "/customer/v4/"; served under /tmf-api like the rest.
RECOMMENDATION = TmfDocument.load(
    "TMF680", "TMF680-Recommendation-v4.0.0.swagger.json", "/tmf-api/recommendation/v4"
)
COMMUNICATION = TmfDocument.load(
    "TMF681", "TMF681-Communication-v4.0.0.swagger.json", "/tmf-api/communicationManagement/v4"
)
SALES = TmfDocument.load("TMF699", "TMF699-Sales-v4.0.0.swagger.json", "/tmf-api/sales/v4")
PROCESS_FLOW = TmfDocument.load(
    "TMF701", "TMF701-ProcessFlow-v4.1.0.swagger.json", "/tmf-api/processFlowManagement/v4"
)
TROUBLE_TICKET = TmfDocument.load(
    "TMF621", "TMF621-TroubleTicket-v4.0.0.swagger.json", "/tmf-api/troubleTicket/v4"
)
SERVICE_PROBLEM = TmfDocument.load(
    "TMF656",
    "TMF656-ServiceProblem-v4.0.0.swagger.json",
    "/tmf-api/serviceProblemManagement/v4",
)
ALARM = TmfDocument.load(
    "TMF642", "TMF642-Alarm-v4.0.0.swagger.json", "/tmf-api/alarmManagement/v4"
)
# The official v2 document's basePath is "/DSLAManagement/api/slaManagement/v2/".
SLA_MANAGEMENT = TmfDocument.load(
    "TMF623", "TMF623-SLAManagement-v2.swagger.json", "/tmf-api/slaManagement/v2"
)
RISK_MANAGEMENT = TmfDocument.load(
    "TMF696", "TMF696-RiskManagement-v4.0.0.swagger.json", "/tmf-api/riskManagement/v4"
)
ACCOUNT = TmfDocument.load(
    "TMF666", "TMF666-Account-v4.0.0.swagger.json", "/tmf-api/accountManagement/v4"
)
PAYMENT_METHOD = TmfDocument.load(
    "TMF670", "TMF670-PaymentMethod-v4.0.0.swagger.json", "/tmf-api/paymentMethod/v4"
)
USAGE = TmfDocument.load(
    "TMF635", "TMF635-Usage-v4.0.0.swagger.json", "/tmf-api/usageManagement/v4"
)
CUSTOMER_BILL = TmfDocument.load(
    "TMF678", "TMF678-Customer_Bill-v4.0.0.swagger.json", "/tmf-api/customerBillManagement/v4"
)
# The official document's basePath is "/paymentManagement/v4/"; served under /tmf-api.
PAYMENT = TmfDocument.load(
    "TMF676", "TMF676-Payment-v4.0.0.swagger.json", "/tmf-api/paymentManagement/v4"
)
