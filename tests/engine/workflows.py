"""Run the example CI pipelines' own commands: read a GitHub Actions workflow or an Azure
Pipelines file, decide which jobs an event runs (their `if:` / `condition:` evaluated),
and run each step whose script calls `batchimage` as the CI runner would (bash, with the
environment the pipeline sets), against whatever `batchimage` is first on PATH.

    runs = run_github(workflow_path, event, vars, base_env, cwd)
    runs = run_azure_pipelines(pipeline_path, variables, base_env, cwd)

Steps that only prepare a runner (checkout, setup-python, pip install, sign-in actions)
are not run: they are listed (`JobRun.skipped`) for the test to check.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COMMAND = re.compile(r"^\s*batchimage\s")
TOKEN = re.compile(r"\s*('(?:[^']|'')*'|&&|\|\||==|!=|[()\[\],!]|[A-Za-z_][\w.\-]*)")
GITHUB_SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # GitHub's `bash` default
AZURE_SHELL = ["bash", "--noprofile", "--norc"]  # an Azure Pipelines `script` / AzureCLI@2


@dataclass
class StepRun:
    """One step that was run: its script's `batchimage` lines, the process, its summary."""

    name: str
    commands: list[str]
    done: subprocess.CompletedProcess[str]
    summary: str = ""


@dataclass
class JobRun:
    """A job the event ran: the steps run, and the steps left to the CI runner."""

    name: str
    steps: list[StepRun] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.done.returncode == 0 for s in self.steps)

    @property
    def commands(self) -> list[str]:
        return [c for s in self.steps for c in s.commands]


def batchimage_lines(script: str) -> list[str]:
    """The lines of a shell script that run `batchimage`."""
    return [line.strip() for line in script.splitlines() if COMMAND.match(line)]


def tokens(text: str) -> list[str]:
    """An expression's tokens (strings keep their quotes)."""
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        found = TOKEN.match(text, pos)
        assert found is not None, f"cannot read the expression {text!r} at {pos}"
        out.append(found.group(1))
        pos = found.end()
    return out


def literal(token: str) -> str:
    return token[1:-1].replace("''", "'")


class GitHubExpression:
    """GitHub Actions expressions, the part workflows use here: names, 'strings', `==`,
    `!=`, `!`, `&&`, `||` (which yields its first truthy operand), parentheses."""

    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.toks, self.pos, self.context = tokens(text), 0, context

    def value(self) -> Any:
        result = self.either()
        assert self.pos == len(self.toks), f"unread tokens {self.toks[self.pos :]}"
        return result

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str:
        self.pos += 1
        return self.toks[self.pos - 1]

    def either(self) -> Any:
        left = self.both()
        while self.peek() == "||":
            self.take()
            right = self.both()
            left = left or right
        return left

    def both(self) -> Any:
        left = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            left = left and right
        return left

    def compare(self) -> Any:
        left = self.unary()
        if self.peek() in ("==", "!="):
            op = self.take()
            right = self.unary()
            same = str(left).lower() == str(right).lower()  # GitHub compares case-insensitively
            return same if op == "==" else not same
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self.unary()
        tok = self.take()
        if tok == "(":
            inner = self.either()
            assert self.take() == ")"
            return inner
        if tok.startswith("'"):
            return literal(tok)
        return self.context.get(tok, "")


def github_value(value: Any, context: dict[str, Any]) -> str:
    """A workflow value with its `${{ }}` expressions evaluated."""
    text = str(value)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(GitHubExpression(m[1], context).value()), text)


def github_condition(text: str | None, context: dict[str, Any]) -> bool:
    """A job's `if:` (with or without `${{ }}`; none: true)."""
    if text is None:
        return True
    inner = str(text).strip()
    if inner.startswith("${{") and inner.endswith("}}"):
        inner = inner[3:-2]
    return bool(GitHubExpression(inner, context).value())


def run_script(
    shell: list[str], script: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*shell, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def run_github(
    workflow: Path,
    event: str,
    ref: str,
    variables: dict[str, str],
    base_env: dict[str, str],
    cwd: Path,
) -> dict[str, JobRun]:
    """Run the jobs `event` (on `ref`) triggers, in order; their `batchimage` steps run."""
    doc = yaml.safe_load(workflow.read_text())
    context: dict[str, Any] = {"github.event_name": event, "github.ref": ref}
    context.update({f"vars.{k}": v for k, v in variables.items()})
    top_env = {k: github_value(v, context) for k, v in (doc.get("env") or {}).items()}
    runs: dict[str, JobRun] = {}
    for name, job in doc["jobs"].items():
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        if not all(n in runs and runs[n].ok for n in needs):
            continue
        if not github_condition(job.get("if"), context):
            continue
        run = runs[name] = JobRun(name)
        own = {k: github_value(v, context) for k, v in (job.get("env") or {}).items()}
        job_env = {**top_env, **own}
        for index, step in enumerate(job["steps"]):
            script = step.get("run")
            if script is None or not batchimage_lines(script):
                run.skipped.append(step)
                continue
            summary = cwd.parent / f"summary-{name}-{index}.md"
            summary.write_text("")
            env = {
                **base_env,
                **job_env,
                **{k: github_value(v, context) for k, v in (step.get("env") or {}).items()},
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": event,
                "GITHUB_REF": ref,
                "GITHUB_STEP_SUMMARY": str(summary),
            }
            done = run_script(GITHUB_SHELL, github_value(script, context), env, cwd)
            step_name = step.get("name", script.splitlines()[0])
            lines = batchimage_lines(script)
            run.steps.append(StepRun(step_name, lines, done, summary.read_text()))
            if done.returncode != 0:
                break
    return runs


class AzureCondition:
    """Azure Pipelines conditions, the part pipelines use here: and, or, not, eq, ne
    (case-insensitive), succeeded(), variables['Name'], 'strings'."""

    def __init__(self, text: str, variables: dict[str, str], deps_ok: bool) -> None:
        self.toks, self.pos = tokens(text), 0
        self.variables, self.deps_ok = variables, deps_ok

    def take(self) -> str:
        self.pos += 1
        return self.toks[self.pos - 1]

    def value(self) -> Any:
        tok = self.take()
        if tok.startswith("'"):
            return literal(tok)
        if tok == "variables":
            assert self.take() == "["
            key = literal(self.take())
            assert self.take() == "]"
            return self.variables.get(key, "")
        assert self.take() == "(", f"{tok} is not a function call"
        args = []
        while self.toks[self.pos] != ")":
            args.append(self.value())
            if self.toks[self.pos] == ",":
                self.take()
        self.take()
        functions = {
            "and": lambda: all(args),
            "or": lambda: any(args),
            "not": lambda: not args[0],
            "eq": lambda: str(args[0]).lower() == str(args[1]).lower(),
            "ne": lambda: str(args[0]).lower() != str(args[1]).lower(),
            "succeeded": lambda: self.deps_ok,
        }
        return functions[tok]()


def macros(text: str, variables: dict[str, str]) -> str:
    """`$(Name)` macros replaced by the variables' values (unknown ones stay, as in Azure
    Pipelines)."""
    return re.sub(r"\$\(([\w.]+)\)", lambda m: variables.get(m[1], m[0]), text)


def variable_env(variables: dict[str, str]) -> dict[str, str]:
    """Variables as a script's environment sees them: upper case, `.` as `_`."""
    return {k.upper().replace(".", "_"): v for k, v in variables.items()}


def run_azure_pipelines(
    pipeline: Path,
    group: dict[str, str],
    predefined: dict[str, str],
    base_env: dict[str, str],
    cwd: Path,
) -> dict[str, JobRun]:
    """Run the jobs the build (its `predefined` variables: Build.Reason, ...) runs, in
    order; `group` holds the variable group's values."""
    doc = yaml.safe_load(pipeline.read_text())
    variables = dict(predefined)
    for entry in doc.get("variables") or []:
        if "group" in entry:
            variables.update(group)
        else:
            variables[entry["name"]] = macros(str(entry["value"]), variables)
    runs: dict[str, JobRun] = {}
    for job in doc["jobs"]:
        name = job["job"]
        needs = job.get("dependsOn", [])
        needs = [needs] if isinstance(needs, str) else needs
        deps_ok = all(n in runs and runs[n].ok for n in needs)
        condition = job.get("condition", "succeeded()")
        if not AzureCondition(condition, variables, deps_ok).value():
            continue
        run = runs[name] = JobRun(name)
        for step in job["steps"]:
            if "script" in step:
                script = step["script"]
            elif str(step.get("task", "")).startswith("AzureCLI@"):
                assert step["inputs"]["scriptType"] == "bash"
                script = step["inputs"]["inlineScript"]
            else:
                script = ""
            if not batchimage_lines(script):
                run.skipped.append(step)
                continue
            env = {
                **base_env,
                **variable_env(variables),
                **{k: macros(str(v), variables) for k, v in (step.get("env") or {}).items()},
                "TF_BUILD": "True",
            }
            done = run_script(AZURE_SHELL, macros(script, variables), env, cwd)
            step_name = step.get("displayName", script.splitlines()[0])
            run.steps.append(StepRun(step_name, batchimage_lines(script), done))
            if done.returncode != 0:
                break
    return runs
