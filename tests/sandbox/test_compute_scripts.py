"""How the sandbox reads guest scripts: recognised downloads, deprovisioning, shutdown and
SAS redaction (pure logic; the Azurite side is covered by test_compute_runcommands)."""

from __future__ import annotations

from batchimage.sandbox.services.compute import scripts

URL = "https://127.0.0.1:9/acct/staging/tool.tar.gz"


def test_shell_downloads() -> None:
    script = "\n".join(
        [
            "set -e",
            f"sudo curl -fsSL -o /opt/tool.tgz '{URL}?sv=1&sig=abc'",
            f"curl -sO {URL} && tar xzf tool.tar.gz",
            f"curl -s {URL} | bash",
            f"wget -q -O /tmp/x '{URL}'; wget {URL}",
            f"azcopy copy '{URL}' /data/tool.tgz",
        ]
    )
    found = [(d.tool, d.destination, d.fail_on_http_error) for d in scripts.downloads(script)]
    assert found == [
        ("curl", "/opt/tool.tgz", True),
        ("curl", "tool.tar.gz", False),
        ("curl", "-", False),
        ("wget", "/tmp/x", True),
        ("wget", "tool.tar.gz", True),
        ("azcopy", "/data/tool.tgz", True),
    ]


def test_powershell_downloads_keep_windows_paths() -> None:
    script = (
        f"Invoke-WebRequest -Uri '{URL}' -OutFile C:\\tools\\t.tgz\n"
        f'iwr "{URL}" -OutFile "D:\\data\\t.tgz"\n'
        f"(New-Object System.Net.WebClient).DownloadFile('{URL}', 'C:\\x\\t.tgz')"
    )
    found = [(d.tool, d.url, d.destination) for d in scripts.downloads(script, "powershell")]
    assert found == [
        ("Invoke-WebRequest", URL, "C:\\tools\\t.tgz"),
        ("Invoke-WebRequest", URL, "D:\\data\\t.tgz"),
        ("WebClient", URL, "C:\\x\\t.tgz"),
    ]


def test_deprovision_shutdown_and_redaction() -> None:
    assert scripts.DEPROVISION["shell"].search("sudo /usr/sbin/waagent -force -deprovision+user")
    assert not scripts.DEPROVISION["shell"].search("echo waagent")
    sysprep = r"C:\Windows\System32\Sysprep\sysprep.exe /oobe /generalize /quiet /shutdown"
    assert scripts.DEPROVISION["powershell"].search(sysprep)
    assert scripts.SHUTDOWN["powershell"].search(sysprep)
    assert scripts.SHUTDOWN["shell"].search("sudo shutdown -h now")
    assert not scripts.SHUTDOWN["shell"].search("systemctl restart nginx")
    assert scripts.redact(f"curl '{URL}?sv=2024&sig=s3cr3t' -o x") == (
        f"curl '{URL}?<query removed>' -o x"
    )
