"""Schemathesis over every operation of the schema, with every check, for the in-process run
(tests/api/test_schemathesis.py) and the live ones (tests/api/test_live_api.py).

Schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`) fails on pytest 9
(`'Function' object has no attribute '_nodeid'`, schemathesis 4.32), so the operations are
driven with Hypothesis directly; every operation runs, and all failures are reported together,
one line each with the curl line that reproduces it.
"""

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _summary(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line.startswith(("- ", "curl ", "Received:", "["))]
    return "; ".join(kept) or lines[0]


def pins_for(seeded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Real values for the path parameters, by operation path, so runs reach rows, not only
    404s (`seeded`: what `tests.api.live.seed` or the in-process fixture made)."""
    api = "/api/v1"
    model = {"ref": seeded["ref"]}
    return {
        f"{api}/models/{{ref}}/": model,
        f"{api}/models/{{ref}}/layers/": model,
        f"{api}/models/{{ref}}/exports/": model,
        f"{api}/models/{{ref}}/layers/{{layer}}/": {**model, "layer": "mixed4c"},
        f"{api}/models/{{ref}}/layers/{{layer}}/units/{{index}}/": {
            **model,
            "layer": "mixed4c",
            "index": 447,
        },
        f"{api}/units/{{id}}/": {"id": seeded["unit"]},
        f"{api}/units/{{id}}/connections/": {"id": seeded["unit"]},
        f"{api}/layers/{{id}}/": {"id": seeded["layer"]},
        f"{api}/renders/{{id}}/": {"id": seeded["render"]},
        f"{api}/notes/{{id}}/": {"id": seeded["note"]},
        f"{api}/comments/{{id}}/": {"id": seeded["comment"]},
        f"{api}/exports/{{id}}/": {"id": seeded["export"]},
        f"{api}/techniques/{{slug}}/": {"slug": "channel"},
    }


def run_every_operation(
    schema: Any,
    pins: dict[str, dict[str, Any]],
    headers: dict[str, str],
    *,
    examples: int,
    coverage: bool,
    methods: tuple[str, ...] = ("GET",),
) -> list[str]:
    """Each operation of `methods`: schemathesis's coverage cases (boundary and wrong-type
    values) if `coverage`, then `examples` of Hypothesis's valid and invalid ones and of the
    pinned path parameters; every failure, one line each."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the schema lost its operations"
    for operation in operations:
        if operation.method.upper() not in methods:
            continue
        if coverage:
            for case in schema.iter_coverage_cases(
                operation,
                generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=schema.config.generation,
            ):
                try:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all listed
                    failures.append(f"{operation.label} (coverage): {_summary(error)}")
        strategies = [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        pinned = pins.get(operation.path)
        if pinned:
            strategies.append(operation.as_strategy(path_parameters=pinned))

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all are listed
            failures.append(f"{operation.label} (fuzzing): {_summary(error)}")
    return failures
