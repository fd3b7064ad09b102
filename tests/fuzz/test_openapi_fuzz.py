"""Schemathesis over every operation of /openapi.json, as a hostile client would: with the
operator's token and with a tenant admin's token, against the app in-process on a real
database. No answer may be a 5xx, and every answer must be one the schema declares (status,
content type, headers, body shape and nullability).

Bounded and repeatable: a fixed number of examples per operation and generation mode,
derandomized (the same cases every run), no example database. `make fuzz` runs it alone and
`make test` with the rest; it prints how many cases were sent and how many failed.
FUZZ_MAX_EXAMPLES raises the bound for a longer local run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from braze_bridge.app import Runtime, create_app
from braze_bridge.config import Settings
from tests.conftest import OPERATOR_TOKEN, TEST_SECRET_KEY

schemathesis = pytest.importorskip("schemathesis", reason="the dev extra brings it (make install)")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS as CHECK_REGISTRY  # noqa: E402
from schemathesis.checks import load_all_checks  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.python import asgi  # noqa: E402

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# What the API states about itself. Schemathesis's other checks (e.g. "a negative case must be
# refused") judge its generator's guesses about intent more than the contract.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


@dataclass
class Tally:
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    nothing_to_negate: list[str] = field(default_factory=list)

    def report(self) -> None:
        distinct = sorted({line.split("\n")[0] for line in self.failures})
        print(
            f"\nfuzz: {self.cases} cases over {len(self.operations)} operations, "
            f"{len(self.failures)} failures ({len(distinct)} distinct); checks: {', '.join(CHECKS)}"
        )
        print("  answers: " + ", ".join(f"{k} x{n}" for k, n in sorted(self.statuses.items())))
        if self.nothing_to_negate:
            print("  nothing to negate: " + ", ".join(self.nothing_to_negate))
        slowest = sorted(self.seconds.items(), key=lambda item: -item[1])[:3]
        print("  slowest: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in slowest))
        for line in distinct:
            print("  FAILED " + line)


def test_every_operation_with_both_token_kinds(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app_settings = Settings(
        data_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        bootstrap_token=OPERATOR_TOKEN,
        allow_any_braze_url=False,
    )
    app = create_app(Runtime(app_settings, database_url, TEST_SECRET_KEY, embedded=False))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        tally = _fuzz(schema)
    finally:
        asgi.shutdown_lifespans()
    with capsys.disabled():
        tally.report()
    assert not tally.failures, "\n".join(tally.failures[:20])


def _tenant_token(schema: Any, operator: dict[str, str]) -> str:
    """A tenant and an admin token of its own, made through the API as a user would."""
    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    made = schema["/v1/tenants"]["POST"].Case(body={"name": "Fuzz", "slug": slug})
    response = made.call(headers=dict(operator))
    assert response.status_code == 201, response.text
    issue = schema["/v1/tenants/{tenant_id}/tokens"]["POST"].Case(
        path_parameters={"tenant_id": response.json()["id"]}, body={"name": "fuzz"}
    )
    issued = issue.call(headers=dict(operator))
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


def _fuzz(schema: Any) -> Tally:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    tokens = {
        "operator": operator,
        "tenant": {"Authorization": f"Bearer {_tenant_token(schema, operator)}"},
    }
    load_all_checks()
    checks = list(CHECK_REGISTRY.get_by_names(CHECKS))
    tally = Tally()

    def run(operation: Any, mode: GenerationMode) -> None:
        # The live feed never ends by itself: what it sent within a second is its answer, and
        # each call costs that second, hence fewer examples.
        streams = operation.path.endswith("/stream")
        read_timeout = 1.0 if streams else 30.0

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=min(MAX_EXAMPLES, 3) if streams else MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def probe(case: Any) -> None:
            for kind, headers in tokens.items():
                tally.cases += 1
                response = case.call(headers=dict(headers), timeout=read_timeout)
                tally.statuses[f"{kind} {response.status_code}"] += 1
                try:
                    case.validate_response(response, checks=checks, headers=dict(headers))
                except FailureGroup as failure:
                    titles = "; ".join(sorted({f.title for f in failure.exceptions}))
                    tally.failures.append(
                        f"{operation.label} [{kind}, {mode.value}] {response.status_code}: {titles}"
                        f"\n    {case.as_curl_command(headers=dict(headers))}"
                        f"\n    -> {response.text[:300]}"
                    )

        try:
            probe()
        except Unsatisfiable:
            # Every input of this operation is optional and free-form: nothing can be invalid.
            tally.nothing_to_negate.append(f"{operation.label} {mode.value}")

    for result in schema.get_all_operations():
        operation = result.ok()
        tally.operations.add(operation.label)
        has_input = bool(list(operation.iter_parameters())) or bool(operation.body)
        for mode in MODES if has_input else MODES[:1]:
            started = time.monotonic()
            run(operation, mode)
            tally.seconds[f"{operation.label} {mode.value}"] = time.monotonic() - started
    return tally
