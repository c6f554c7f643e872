"""Schemathesis against etomcrm's own OpenAPI document: no 5xx, no response that breaks
the schema it documents, bad input refused with a documented 4xx.

Every operation of the TMF APIs is fuzzed on SQLite and on PostgreSQL, with valid and
invalid data, authenticated as admin. ``make test`` runs the generated examples only;
``ETOMCRM_FUZZ_DEEP=1`` adds schemathesis's coverage phase (boundary values for every
attribute, some 40,000 cases: an hour or more on this machine).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from etomcrm.bootstrap import create_app

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(deliver_events=False, run_flows=False)
)
# A body over a documented size limit (a bulk post of more than 1,000 usage records) is
# refused with 413 Content Too Large, documented for its operation: as much a refusal
# of invalid data as schemathesis's default 4xx codes.
_rejection = schema.config.checks.negative_data_rejection
schema.config.checks.negative_data_rejection = type(_rejection)(
    expected_statuses=[*_rejection.expected_statuses, 413]
)
EXAMPLES = int(os.environ.get("ETOMCRM_FUZZ_EXAMPLES", "40"))
PHASES = (
    [Phase.explicit, Phase.generate] if os.environ.get("ETOMCRM_FUZZ_DEEP") else [Phase.generate]
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
# Invalid bodies must be refused. For reads and deletes the check is left out: any
# undeclared query key is a TMF attribute filter by design, and schemathesis counts a
# case as invalid even when its invalid part (a key without a value) never reaches the
# wire, so the request it sends is a valid one.
BODY_CHECKS = [*CHECKS, checks.negative_data_rejection]


@schema.include(path_regex="^/tmf-api/").parametrize()
@settings(
    max_examples=EXAMPLES,
    phases=PHASES,
    # CI runs the same examples every time; a developer's run explores new ones.
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_survives_fuzzing(case: schemathesis.Case[Any], admin: dict[str, str]) -> None:
    # Hypothesis runs every example of one operation with the same fixtures: one database
    # (emptied once per operation) and one admin key.
    has_body = case.method.upper() in ("POST", "PATCH")
    case.call_and_validate(headers=admin, checks=BODY_CHECKS if has_body else CHECKS)
