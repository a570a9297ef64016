"""docs/azure-behaviours.md registers every error code the sandbox can answer with, each
with its public source (issue 11). The codes are read from the sandbox's source by
tests/register_scan.py; the register's Code tables by batchimage.sandbox.register.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

from batchimage.sandbox import register
from tests.engine.procs import REPO
from tests.register_scan import Found, Scanner, Site

SANDBOX = REPO / "batchimage" / "sandbox"
REGISTER = REPO / "docs" / "azure-behaviours.md"
# Modules that answer no Azure request: the sandbox's own admin API, the register's parser.
NOT_AZURE = (
    "batchimage/sandbox/adminapi.py",
    "batchimage/sandbox/register.py",
    "batchimage/sandbox/services/authorization/admin.py",
    "batchimage/sandbox/services/compute/responses/admin.py",
)
CONFIGURED = "configuration"  # "Raised by" of a code only fault rules inject

# Places the scan cannot follow (module, why), and where their codes come from instead.
FOLLOWED_ELSEWHERE = {
    ("batchimage/sandbox/faults.py", "FaultRule called with *args/**kwargs"): (
        "a fault rule's code comes from configuration: free for a user, held to this "
        "register by the guard in tests (batchimage/sandbox/register.py)"
    ),
}

# Node error codes the sandbox once answered with that have no public source as Batch node
# errors: the sandbox must not answer them, and they must never get a row.
UNSOURCED = {
    "NodeAgentSkuMismatch",
    "ImageNotGeneralized",
    "ImageHasVMExtensions",
    "ImageNotFound",
}


@functools.cache
def sandbox_scan() -> Found:
    return Scanner(SANDBOX, skip=NOT_AZURE).scan()


@functools.cache
def rows() -> list[register.Row]:
    return register.rows(REGISTER.read_text(encoding="utf-8"))


def without_rows(found: Found, registered: set[str]) -> list[str]:
    """'Code (where)' for each code the scan found that has no row."""
    return [
        f"{code} ({', '.join(sorted(map(str, found.codes[code])))})"
        for code in sorted(found.codes)
        if code not in registered
    ]


def module(site: Site) -> str:
    """How the register's "Raised by" names the module of a site."""
    return site.path.removeprefix("batchimage/sandbox/")


def test_every_code_the_sandbox_answers_with_has_a_row() -> None:
    registered = {row.code for row in rows()}
    missing = without_rows(sandbox_scan(), registered)
    assert not missing, (
        "codes the sandbox can answer with but docs/azure-behaviours.md does not register "
        "(add a row with the code's public source to the Error codes table):\n" + "\n".join(missing)
    )


def test_every_row_has_a_source_and_says_where_it_is_raised() -> None:
    problems = []
    for row in rows():
        source = row.cells.get("Source", "")
        if source.strip(" -") == "":
            problems.append(f"line {row.line}: {row.code} has no source")
        if not row.cells.get("Raised by", "").strip(" -"):
            problems.append(f"line {row.line}: {row.code} does not say where it is raised")
    assert not problems, "\n".join(problems)


def test_rows_name_the_modules_that_raise_them() -> None:
    found = sandbox_scan()
    problems = []
    for row in rows():
        raised_by = row.cells.get("Raised by", "")
        sites = found.codes.get(row.code)
        if not sites:
            if CONFIGURED not in raised_by:
                problems.append(f"line {row.line}: nothing in the sandbox raises {row.code}")
            continue
        absent = sorted({module(s) for s in sites if module(s) not in raised_by})
        if absent:
            problems.append(f"line {row.line}: {row.code} is also raised by {', '.join(absent)}")
    assert not problems, "\n".join(problems)


def test_no_code_is_registered_twice() -> None:
    seen: dict[str, int] = {}
    twice = []
    for row in rows():
        if row.code in seen:
            twice.append(f"{row.code}: lines {seen[row.code]} and {row.line}")
        seen[row.code] = row.line
    assert not twice, "\n".join(twice)


def test_the_scan_follows_every_code_or_says_why_not() -> None:
    unresolved = {(site.path, why): site for site, why in sandbox_scan().unresolved.items()}
    unexplained = sorted(
        f"{site}: {why}"
        for (p, why), site in unresolved.items()
        if (p, why) not in FOLLOWED_ELSEWHERE
    )
    stale = sorted(f"{p}: {why}" for p, why in FOLLOWED_ELSEWHERE if (p, why) not in unresolved)
    assert not unexplained, (
        "the scan cannot tell which codes these places answer with: make the code a literal "
        "(or a constant) or explain it in FOLLOWED_ELSEWHERE:\n" + "\n".join(unexplained)
    )
    assert not stale, "FOLLOWED_ELSEWHERE names places the scan now follows:\n" + "\n".join(stale)


def test_unsourced_codes_have_no_row() -> None:
    listed = sorted(UNSOURCED & {row.code for row in rows()})
    assert not listed, f"codes with no public source must not be registered: {listed}"


# -- the scan itself, on a small package ----------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text))
    return package


SNIPPET = {
    "apierrors.py": """
        from dataclasses import dataclass

        @dataclass
        class ApiError(Exception):
            status: int
            code: str
            message: str

        def bad_request(code, message):
            return ApiError(400, code, message)
    """,
    "service.py": """
        from pkg import apierrors as errs
        from pkg.apierrors import bad_request

        GONE = ("GhostNotFound", "It is gone.")

        def rule(code):
            def check(name):
                raise errs.bad_request(code, name)
            return check

        CHECK = rule("ClosureCode")

        def handler():
            raise bad_request("HelperCode", "no")

        def picked():
            code, message = GONE
            return {"code": code, "message": message}

        def looped():
            for code, message in (("LoopA", "a"), ("LoopB", "b")):
                raise bad_request(code, message)

        def status():
            return {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}

        def dynamic(name):
            raise bad_request(f"Made{name}", "no")

        def escaped():
            return list(map(bad_request, ["Hidden"], ["no"]))
    """,
}


def test_the_scan_finds_codes_behind_helpers_closures_and_constants(tmp_path: Path) -> None:
    found = Scanner(write_package(tmp_path, SNIPPET)).scan()
    assert set(found.codes) == {
        "HelperCode",
        "ClosureCode",
        "GhostNotFound",
        "LoopA",
        "LoopB",
    }
    assert {s.path for s in found.codes["ClosureCode"]} == {"pkg/service.py"}
    assert without_rows(found, {"HelperCode", "LoopA", "LoopB"}) == [
        "ClosureCode (pkg/service.py:12)",
        "GhostNotFound (pkg/service.py:5)",
    ]


def test_the_scan_reports_what_it_cannot_follow(tmp_path: Path) -> None:
    found = Scanner(write_package(tmp_path, SNIPPET)).scan()
    reasons = {(site.line, why) for site, why in found.unresolved.items()}
    assert (29, "cannot follow \"f'Made{name}'\"") in reasons
    assert (32, "bad_request is passed as a value") in reasons
    assert len(reasons) == 2


def test_the_register_parser_reads_only_code_tables() -> None:
    text = textwrap.dedent(
        """
        | Rule | Source | Sandbox | Tool | Test |
        |---|---|---|---|---|
        | NotACode | x | y | z | t |

        | Code | Status or field | Service | Source | Raised by |
        |---|---|---|---|---|
        | `FirstCode` | 404 | ARM | learn.microsoft.com/x | apierrors.py |
        | SecondCode | 409 | Batch | | |
        """
    )
    parsed = register.rows(text)
    assert [r.code for r in parsed] == ["FirstCode", "SecondCode"]
    assert parsed[0].cells["Source"] == "learn.microsoft.com/x"
    assert parsed[1].cells["Source"] == ""
    assert register.codes(text) == {"FirstCode", "SecondCode"}
