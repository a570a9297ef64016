"""Engine tests reuse the sandbox fixtures (a real sandbox process, started on first use)."""

from tests.sandbox.conftest import sandbox, sandbox_folder, sandbox_process  # noqa: F401
