"""Secrets nobody registered are masked by their shape in everything recorded (state,
status, logs), and only a bounded tail of a script's output is kept: the shapes one by
one, then a failing customize script that prints some, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchimage.core.clip import clip, tail_lines
from batchimage.core.redact import MASK, find_secret, redact
from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness

KEY = "k3Yx" * 21 + "Ab=="  # 88 characters: a storage account key's shape
BLOB = "https://a.blob.core.windows.net/c/b.vhd"
BUS = "Endpoint=sb://n.servicebus.windows.net/;SharedAccessKeyName=R"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0B==\n-----END PRIVATE KEY-----"
SHAPES = [
    # (text with a secret, the secret's part that must go, what stays)
    (f"{BLOB}?sv=2024-05-04&sp=r&sig=Zx%2Bq9%3D", "Zx%2Bq9", "sp=r"),
    ("SAS: sv=2024-05-04&sr=b&sig=QWERTYsig1234", "QWERTYsig1234", "sr=b"),
    ("sig=LEADINGsig99 was the token", "LEADINGsig99", "was the token"),
    (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};", KEY, "AccountName"),
    (f"the key is {KEY} (primary)", KEY, "(primary)"),
    (f"{BUS};SharedAccessKey=s3cr3tSAK=", "s3cr3tSAK", "SharedAccessKeyName=R"),
    ("BlobEndpoint=https://a/;SharedAccessSignature=sv=2024&sig=abcSIG", "abcSIG", "BlobEndpoint"),
    ("Server=tcp:db;User ID=ana;Password=hunter2hunter;", "hunter2hunter", "User ID=ana"),
    ("git clone https://ana:ghTok3nValue@github.com/x/y", "ghTok3nValue", "github.com/x/y"),
    ("Authorization: Bearer abc.DEF-ghi_JKL~mno", "abc.DEF-ghi_JKL~mno", "Authorization"),
    ("Authorization: Basic YW5hOmh1bnRlcjI=", "YW5hOmh1bnRlcjI", "Authorization"),
    (f"token {JWT} seen", "eyJhbGciOiJSUzI1NiJ9", "seen"),
    ("export AZURE_CLIENT_SECRET=Zq8~abc.def", "Zq8~abc.def", "export"),
    ("STORAGE_KEY=plainValue123 and DB_PASSWORD=pw0rd", "plainValue123", "and"),
    ("secret Ab38Q~abcdefghijklmnopqrstuvwxyz0123456 here", "Ab38Q~abcdefghijklmnop", "here"),
    (PEM, "MIIEvQIBADANBg", "-----END PRIVATE KEY-----"),
    ('{"client_secret": "abc123", "name": "x"}', "abc123", '"name": "x"'),
    ("first line\nsig=NEXTLINEsig\nthird", "NEXTLINEsig", "third"),
]
HARMLESS = [
    "the token audience is wrong (AADSTS500011)",
    "Basic tier, Standard_D2s_v5, 128 GiB",
    "design=1 signal=ok; assign=2",
    "sha256 3f1c0e9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0",
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-1",
    "key vault name KEYVAULT; primary key rotated",
]


@pytest.mark.parametrize(("text", "secret", "kept"), SHAPES)
def test_each_known_shape_is_masked(text: str, secret: str, kept: str) -> None:
    masked = redact(text)
    assert secret not in masked and MASK in masked
    assert kept in masked  # what is not secret stays readable
    assert find_secret(text) is not None  # the state writer would refuse it unmasked
    assert find_secret(masked) is None  # and takes it masked
    assert redact(masked) == masked


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_left_alone(text: str) -> None:
    assert redact(text) == text and find_secret(text) is None


def test_only_a_bounded_tail_is_kept() -> None:
    output = "\n".join(f"line {i}" for i in range(500)) + "\n" + "x" * 10_000 + "\nthe end\n"
    kept = tail_lines(output)
    assert len(kept) == 20 and kept[-1] == "the end" and kept[0] == "line 482"
    assert all(len(line) <= 240 for line in kept)
    message = "step failed: " + output
    clipped = clip(message, 2000)
    assert len(clipped) <= 2000
    assert clipped.startswith("step failed: line 0") and clipped.endswith("the end\n")
    assert "characters left out" in clipped


def test_a_failing_script_that_prints_secrets_is_recorded_masked(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    sas = (
        "https://other.blob.core.windows.net/drop/out.tar?sv=2024-05-04&sp=rw&sig=UNREGsig%2Bx9%3D"
    )
    stdout = "\n".join(
        [*(f"step {i}" for i in range(100)), f"uploading to {sas}", "x" * 3000, "last words"]
    )
    stderr = f"AccountKey={KEY}\nexport AZURE_CLIENT_SECRET=Zq8~unregistered.value\nfailed"
    rule = {"pattern": "built by batchimage", "exit_code": 7, "stdout": stdout, "stderr": stderr}
    spec = pools.spec("quickstart.yaml")
    env = ci_env(sandbox_folder)
    pools.admin.configure(compute={"script_failures": [rule]})
    try:
        applied = cli(spec.parent, env, "apply", spec.name, "--yes", "--log-format", "json")
    finally:
        pools.admin.configure(compute={"script_failures": []})
    assert applied.returncode == 1, applied.stderr
    status = cli(spec.parent, env, "status", spec.name)
    shown = cli(spec.parent, env, "status", spec.name, "--format", "json")
    state_text = pools.store(spec).path.read_text()
    secrets = ["UNREGsig", KEY, "unregistered.value"]
    for where in (applied.stderr, status.stdout, shown.stdout, state_text):
        for secret in secrets:
            assert secret not in where
    steps = json.loads(shown.stdout)["steps"]
    failed = [k for k, step in steps.items() if step["last_error"]]
    assert failed == ["customize.0"], applied.stderr[-3000:]
    error = steps["customize.0"]["last_error"]
    message = error["message"]
    assert "exit code 7" in message and "last words" in message and "failed" in message
    assert "sig=REDACTED" in message and f"AccountKey={MASK}" in message
    assert "AZURE_CLIENT_SECRET=REDACTED" in message
    assert "step 0\n" not in message  # only the tail of the output
    assert len(message) <= 2000
    assert "last error:" in status.stdout and "sig=REDACTED" in status.stdout
    cli(spec.parent, env, "destroy", spec.name, "--yes")
