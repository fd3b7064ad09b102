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

import json
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
from braze_bridge.security.webhook_auth import sign_hmac_sha256
from tests.conftest import OPERATOR_TOKEN, TEST_SECRET_KEY
from tests.extole_bodies import REWARD_FULFILLED_RAW
from tests.integration.admin_support import BRAZE

schemathesis = pytest.importorskip("schemathesis", reason="the dev extra brings it (make install)")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS as CHECK_REGISTRY  # noqa: E402
from schemathesis.checks import load_all_checks  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.python import asgi  # noqa: E402

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
# Cases whose path ids name objects that exist (made before fuzzing), per operation and mode.
KNOWN_ID_EXAMPLES = max(1, MAX_EXAMPLES * 2 // 3)
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


@dataclass
class Known:
    """Objects made through the API before fuzzing, so cases reach past the 404 of an
    unknown id: a tenant with its admin token, a connection, a webhook event, a replay job."""

    tenant_token: str
    path_ids: dict[str, str]


def _made(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _known_objects(schema: Any, operator: dict[str, str]) -> Known:
    def call(path: str, method: str, **case: Any) -> Any:
        return schema[path][method].Case(**case).call(headers=dict(operator))

    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    tenant = _made(call("/v1/tenants", "POST", body={"name": "Fuzz", "slug": slug}))
    tokens = "/v1/tenants/{tenant_id}/tokens"
    ids = {"tenant_id": tenant["id"]}
    token = _made(call(tokens, "POST", path_parameters=ids, body={"name": "fuzz"}))
    spare = _made(call(tokens, "POST", path_parameters=ids, body={"name": "spare"}))
    connection = _made(
        call(
            "/v1/connections",
            "POST",
            body={
                "tenant_id": tenant["id"],
                "name": "Fuzz referral",
                "source": "extole",
                "braze": {"rest_endpoint": BRAZE, "api_key": str(uuid.uuid4())},
                "settings": {"reward_states": ["FULFILLED"]},
            },
        )
    )
    content = REWARD_FULFILLED_RAW
    hook = schema["/v1/hooks/{connection_id}"]["POST"].Case(
        path_parameters={"connection_id": connection["id"]},
        body=json.loads(content),
        media_type="application/json",
    )
    signature = sign_hmac_sha256(connection["webhook_secret"], content)
    event = _made(
        hook.call(
            headers={"X-Extole-Signature": signature, "Content-Type": "application/json"},
            data=content,
        ),
        200,
    )
    job = _made(call("/v1/events/replay", "POST", body={"connection_id": connection["id"]}), 202)
    return Known(
        tenant_token=token["token"],
        path_ids={
            "tenant_id": tenant["id"],
            "token_id": spare["id"],
            "connection_id": connection["id"],
            "event_id": event["event_id"],
            "job_id": job["id"],
            "external_id": json.loads(content)["partner_user_id"],
        },
    )


def _fuzz(schema: Any) -> Tally:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    known = _known_objects(schema, operator)
    tokens = {
        "operator": operator,
        "tenant": {"Authorization": f"Bearer {known.tenant_token}"},
    }
    load_all_checks()
    checks = list(CHECK_REGISTRY.get_by_names(CHECKS))
    tally = Tally()

    def run(operation: Any, mode: GenerationMode, path_ids: dict[str, str] | None) -> None:
        # The live feed never ends by itself: what it sent within a second is its answer, and
        # each call costs that second, hence fewer examples.
        streams = operation.path.endswith("/stream")
        read_timeout = 1.0 if streams else 30.0

        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_ids)
        examples = KNOWN_ID_EXAMPLES if path_ids else MAX_EXAMPLES

        @given(case=strategy)
        @settings(
            max_examples=min(examples, 3) if streams else examples,
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
                    ids = ", known ids" if path_ids else ""
                    tally.failures.append(
                        f"{operation.label} [{kind}, {mode.value}{ids}] "
                        f"{response.status_code}: {titles}"
                        f"\n    {case.as_curl_command(headers=dict(headers))}"
                        f"\n    -> {response.text[:300]}"
                    )

        try:
            probe()
        except Unsatisfiable:
            # Every input of this operation is optional and free-form: nothing can be invalid.
            if path_ids is None:
                tally.nothing_to_negate.append(f"{operation.label} {mode.value}")

    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletes last, so the known objects live through every other operation.
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        tally.operations.add(operation.label)
        has_input = bool(list(operation.iter_parameters())) or bool(operation.body)
        names = {p.name for p in operation.path_parameters}
        # Known ids for every path parameter (not for the connection test: it calls Braze).
        known_ids = (
            {name: known.path_ids[name] for name in names}
            if names and names <= set(known.path_ids) and not operation.path.endswith("/test")
            else None
        )
        for mode in MODES if has_input else MODES[:1]:
            for path_ids in (None, known_ids) if known_ids else (None,):
                started = time.monotonic()
                run(operation, mode, path_ids)
                label = f"{operation.label} {mode.value}{' known' if path_ids else ''}"
                tally.seconds[label] = time.monotonic() - started
    return tally
