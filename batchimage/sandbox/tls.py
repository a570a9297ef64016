"""The sandbox's TLS material: a private CA and a certificate for 127.0.0.1/localhost,
made once per sandbox folder (kept across restarts so exported CA bundles stay valid)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA bundle clients trust and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path


def ensure_tls(folder: Path) -> TlsFiles:
    """Create `folder/tls/{ca,cert,key}.pem` if missing; return their paths."""
    tls = folder / "tls"
    files = TlsFiles(tls / "ca.pem", tls / "cert.pem", tls / "key.pem")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    import trustme

    tls.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="batchimage sandbox")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca.cert_pem.write_to_path(str(files.ca))
    cert.private_key_pem.write_to_path(str(files.key))
    os.chmod(files.key, 0o600)
    with open(files.cert, "wb") as out:
        for pem in cert.cert_chain_pems:
            out.write(pem.bytes())
    return files
