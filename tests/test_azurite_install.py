"""Finding Azurite: a missing one is installed with npm into the cache (saying so), or the
error gives the exact command to run."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from batchimage.errors import SandboxError
from batchimage.sandbox.azurite import AZURITE_VERSION, find_azurite

FAKE_NPM = """#!{python}
# records its arguments, then installs a stand-in azurite-blob under --prefix
import os, sys
args = sys.argv[1:]
open(os.environ["NPM_ARGS"], "w").write(" ".join(args))
binary = os.path.join(args[args.index("--prefix") + 1], "node_modules", ".bin", "azurite-blob")
os.makedirs(os.path.dirname(binary))
open(binary, "w").write("#!/bin/sh\\n")
os.chmod(binary, 0o755)
"""


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Azurite anywhere: empty cache, no BATCHIMAGE_AZURITE, a PATH with nothing on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("BATCHIMAGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BATCHIMAGE_AZURITE", raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_missing_azurite_without_npm_names_the_install_command(bare_env: Path) -> None:
    with pytest.raises(SandboxError) as err:
        find_azurite()
    message = str(err.value)
    assert "npm install --no-audit --no-fund --loglevel=error --prefix " in message
    assert f"azurite@{AZURITE_VERSION}" in message


def test_missing_azurite_is_installed_into_the_cache_with_npm(
    bare_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    npm = bare_env / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("NPM_ARGS", str(tmp_path / "npm-args"))
    found = find_azurite()
    cache = tmp_path / "cache" / "azurite"
    assert found == cache / "node_modules" / ".bin" / "azurite-blob"
    assert os.access(found, os.X_OK)
    args = (tmp_path / "npm-args").read_text().split()
    assert args[args.index("--prefix") + 1] == str(cache)
    assert f"azurite@{AZURITE_VERSION}" in args
    assert "installing Azurite" in capsys.readouterr().err
    # found in the cache from now on: npm is not run again
    (tmp_path / "npm-args").unlink()
    assert find_azurite() == found
    assert not (tmp_path / "npm-args").exists()


def test_install_refused_when_not_allowed(bare_env: Path) -> None:
    (bare_env / "npm").write_text("#!/bin/sh\nexit 0\n")
    (bare_env / "npm").chmod(0o755)
    with pytest.raises(SandboxError, match="install it with"):
        find_azurite(install=False)
