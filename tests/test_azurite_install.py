"""Finding Azurite: a missing one is installed with npm into the cache, in the foreground
(saying so, with npm's own output on stderr) and within its own time limit; without
Node.js or npm the error says what to install and where to get it."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from batchimage.sandbox.azurite import AZURITE_VERSION, NODE_MAJOR, find_azurite
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.owners import alive

FAKE_NPM = """#!{python}
# records its arguments, then installs a stand-in azurite-blob under --prefix
import os, sys
args = sys.argv[1:]
open(os.environ["NPM_ARGS"], "w").write(" ".join(args))
print("fake npm: added 1 package", file=sys.stderr)
binary = os.path.join(args[args.index("--prefix") + 1], "node_modules", ".bin", "azurite-blob")
os.makedirs(os.path.dirname(binary))
open(binary, "w").write("#!/bin/sh\\n")
os.chmod(binary, 0o755)
"""

HANGING_NPM = f"""#!/bin/sh
# says who it is, then never finishes (a stuck network)
echo $$ > "$NPM_PID"
exec {shutil.which("sleep")} 600
"""


def _tool(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Azurite anywhere: empty cache, no BATCHIMAGE_AZURITE, a PATH with nothing on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("BATCHIMAGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BATCHIMAGE_AZURITE", raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.fixture
def with_node(bare_env: Path) -> Path:
    """A `node` on PATH (a stand-in: finding Azurite only looks for it)."""
    _tool(bare_env, "node", "#!/bin/sh\nexit 0\n")
    return bare_env


def test_without_node_and_npm_the_error_says_what_to_install(bare_env: Path) -> None:
    with pytest.raises(SandboxError) as err:
        find_azurite()
    message = str(err.value)
    assert f"needs Node.js {NODE_MAJOR} or later, with npm" in message
    assert "`node` and `npm` are not on PATH" in message
    assert "https://nodejs.org/en/download" in message
    assert "npm install --no-audit --no-fund --loglevel=error --prefix " in message
    assert f"azurite@{AZURITE_VERSION}" in message


def test_an_installed_azurite_still_needs_node(bare_env: Path, tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "azurite" / "node_modules" / ".bin"
    cached.mkdir(parents=True)
    _tool(cached, "azurite-blob", "#!/usr/bin/env node\n")
    with pytest.raises(SandboxError, match=r"Azurite is installed .* but `node` is not on PATH"):
        find_azurite()


def test_missing_azurite_is_installed_into_the_cache_with_npm(
    with_node: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _tool(with_node, "npm", FAKE_NPM.format(python=sys.executable))
    monkeypatch.setenv("NPM_ARGS", str(tmp_path / "npm-args"))
    found = find_azurite()
    cache = tmp_path / "cache" / "azurite"
    assert found == cache / "node_modules" / ".bin" / "azurite-blob"
    assert os.access(found, os.X_OK)
    args = (tmp_path / "npm-args").read_text().split()
    assert args[args.index("--prefix") + 1] == str(cache)
    assert f"azurite@{AZURITE_VERSION}" in args
    out, err = capfd.readouterr()
    assert out == ""  # npm's output goes to stderr: stdout stays the command's
    said = err.splitlines()
    assert said[0].startswith(f"installing Azurite {AZURITE_VERSION} ")
    assert said[1] == "fake npm: added 1 package"  # npm runs in the foreground, visibly
    assert said[2].startswith(f"Azurite {AZURITE_VERSION} installed in ")
    # found in the cache from now on: npm is not run again
    (tmp_path / "npm-args").unlink()
    assert find_azurite() == found
    assert not (tmp_path / "npm-args").exists()


def test_an_install_that_does_not_finish_is_stopped_at_its_limit(
    with_node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tool(with_node, "npm", HANGING_NPM)
    monkeypatch.setenv("NPM_PID", str(tmp_path / "npm-pid"))
    with pytest.raises(SandboxError, match=r"did not finish within 1 s .* run it yourself"):
        find_azurite(timeout=1)
    assert not alive(int((tmp_path / "npm-pid").read_text()))  # npm is stopped, not left


def test_install_refused_when_not_allowed(with_node: Path) -> None:
    _tool(with_node, "npm", "#!/bin/sh\nexit 0\n")
    with pytest.raises(SandboxError, match="install it with"):
        find_azurite(install=False)
