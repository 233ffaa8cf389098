"""Schemathesis fuzzes every operation of the published OpenAPI schema against the real server,
as a street and as an admin (widest access): no input may cause a server error, and every
successful answer matches the response schema the API publishes (its response models).

(schemathesis' own pytest loader does not work with this pytest version, so the operations'
Hypothesis strategies are driven directly.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests import test_api_support
from tests.test_api_support import WANGJING, seed_item

live = test_api_support.live


def test_no_server_errors_on_any_operation(live):
    for _ in range(3):
        seed_item(WANGJING)  # something real to hit
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 19
    failures: list[str] = []
    calls = [0]
    conformed = [0]
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            for who in ("wangjing", "admin"):
                calls[0] += 1
                resp = case.call(base_url=live.url, headers={"Authorization": f"Bearer {live.tokens[who]}"})
                if resp.status_code >= 500:
                    failures.append(
                        f"{who} {case.method} {case.formatted_path} {resp.status_code}: {resp.text[:300]}"
                    )
                elif resp.status_code < 300:
                    try:
                        case.validate_response(resp, checks=[response_schema_conformance])
                    except Exception as exc:  # noqa: BLE001 - schemathesis raises a failure group
                        failures.append(f"{who} {case.method} {case.formatted_path}: {str(exc)[:500]}")
                    else:
                        conformed[0] += 1

        run()
    assert failures == [], "\n".join(failures)
    assert calls[0] >= 4 * len(operations)  # every operation was really exercised
    assert conformed[0] >= len(operations)  # and many answers were checked against their schema
