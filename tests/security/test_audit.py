"""The dependency-audit policy of .ci/audit (docs/SECURITY.md), applied to saved pip-audit
reports: what fails CI, what an allow-list entry permits and for how long."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-12-01"


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def _dep(name: str, version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": list(vulns)}


VULN = {"id": "PYSEC-2099-1", "fix_versions": ["9.9"], "aliases": ["CVE-2099-0001"]}


def _audit(
    tmp_path: Path, report: dict[str, Any], allowlist: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "allow.txt").write_text(allowlist)
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / ".ci" / "audit"),
            "--report",
            str(tmp_path / "report.json"),
            "--allowlist",
            str(tmp_path / "allow.txt"),
            "--today",
            TODAY,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )


def test_a_clean_report_passes(tmp_path: Path) -> None:
    done = _audit(tmp_path, _report(_dep("django", "5.2.19"), _dep("pillow", "13.0.0")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 packages audited; passed" in done.stdout


def test_a_finding_that_is_not_allowed_fails(tmp_path: Path) -> None:
    done = _audit(tmp_path, _report(_dep("pillow", "10.0.0", VULN)))
    assert done.returncode == 1
    assert "NOT ALLOWED  PYSEC-2099-1 in pillow 10.0.0 (fixed in: 9.9)" in done.stdout


@pytest.mark.parametrize("vuln_id", ["PYSEC-2099-1", "CVE-2099-0001"])
def test_an_allowed_finding_passes_until_its_review_date(tmp_path: Path, vuln_id: str) -> None:
    entry = f"{vuln_id} | Pillow | 2026-12-31 | we never decode that format\n"
    done = _audit(tmp_path, _report(_dep("pillow", "10.0.0", VULN)), entry)
    assert done.returncode == 0, done.stdout
    assert "allowed      PYSEC-2099-1 in pillow 10.0.0" in done.stdout
    assert "we never decode that format" in done.stdout


def test_an_allowance_past_its_review_date_fails(tmp_path: Path) -> None:
    entry = "PYSEC-2099-1 | pillow | 2026-11-30 | we never decode that format\n"
    done = _audit(tmp_path, _report(_dep("pillow", "10.0.0", VULN)), entry)
    assert done.returncode == 1
    assert "REVIEW DUE" in done.stdout and "allowed until 2026-11-30" in done.stdout


def test_an_allowance_names_the_package_too(tmp_path: Path) -> None:
    entry = "PYSEC-2099-1 | torch | 2026-12-31 | another package's advisory\n"
    done = _audit(tmp_path, _report(_dep("pillow", "10.0.0", VULN)), entry)
    assert done.returncode == 1
    assert "NOT ALLOWED" in done.stdout and "stale entry  line 1" in done.stdout


def test_a_stale_entry_is_reported_but_does_not_fail(tmp_path: Path) -> None:
    entry = "# comment\n\nPYSEC-2000-9 | pillow | 2026-12-31 | fixed since\n"
    done = _audit(tmp_path, _report(_dep("pillow", "13.0.0")), entry)
    assert done.returncode == 0
    assert "stale entry  line 3 (PYSEC-2000-9, pillow) matches no finding" in done.stdout


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("PYSEC-2099-1 | pillow | 2026-12-31\n", "expected `ID | package | review-by"),
        ("PYSEC-2099-1 | pillow | soon | reason\n", "'soon' is not a YYYY-MM-DD date"),
        ("PYSEC-2099-1 | | 2026-12-31 | reason\n", "expected `ID | package | review-by"),
    ],
)
def test_a_malformed_allowlist_makes_the_audit_untrustworthy(
    tmp_path: Path, entry: str, message: str
) -> None:
    done = _audit(tmp_path, _report(_dep("pillow", "13.0.0")), entry)
    assert done.returncode == 2
    assert message in done.stderr


def test_nothing_audited_is_a_loud_warning_or_a_failure_when_required(tmp_path: Path) -> None:
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be"}
    done = _audit(tmp_path, _report(skipped))
    assert done.returncode == 0
    assert "DEPENDENCY AUDIT NOT PERFORMED" in done.stderr
    strict = _audit(tmp_path, _report(skipped), AUDIT_REQUIRE_SERVICE="1")
    assert strict.returncode == 2


def test_the_project_allowlist_is_well_formed(tmp_path: Path) -> None:
    allowlist = (ROOT / ".ci" / "audit-allowlist.txt").read_text()
    done = _audit(tmp_path, _report(_dep("django", "5.2.19")), allowlist)
    assert done.returncode == 0, done.stderr
