"""The sandbox's own error (the sandbox is a program of its own; the tool's
`batchimage.sandbox_client` turns it into the tool's `batchimage.core.errors.SandboxError`)."""

from __future__ import annotations


class SandboxError(Exception):
    """The local Azure (sandbox) could not be started, configured or reached."""
