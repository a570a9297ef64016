"""How the sandbox reads guest scripts: recognised downloads, deprovisioning, shutdown and
SAS redaction (pure logic; the Azurite side is covered by test_compute_runcommands)."""

from __future__ import annotations

from batchimage.sandbox.services.compute.guest import scripts

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


def test_systemd_units_run_later_and_the_rest_is_foreground() -> None:
    from batchimage.sandbox.services.compute.guest import detached
    from batchimage.steps.generalize_scripts import linux_launcher

    script = linux_launcher("waagent -deprovision+user -force")
    foreground, later = detached.split(script)
    assert [(u.delay, u.unit) for u in later] == [(60.0, "batchimage-generalize")]
    assert "waagent -deprovision+user -force" in later[0].command
    assert "shutdown -h now" in later[0].command
    assert "command -v systemd-run" in foreground  # an argument, not a unit
    assert not scripts.DEPROVISION["shell"].search(foreground)
    assert detached.split("sudo systemd-run --on-active='1min 30s' poweroff; echo done")[1] == [
        detached.Detached(delay=90.0, command="poweroff")
    ]
    # Not readable as a systemd-run command line: left in the foreground.
    assert detached.split("systemd-run --on-active=soon poweroff")[1] == []
    assert detached.span_seconds("2h") == 7200.0 and detached.span_seconds("5 parsecs") is None


def test_what_a_script_does_to_the_guest() -> None:
    """Foreground deprovision / power-off: the command never reports; a unit a minute later
    (or more) reports first; a unit sooner than that is the foreground again."""
    run = scripts.ScriptRun()
    scripts._guest_effects(run, "apt-get update\nsudo waagent -deprovision+user -force")
    assert (run.deprovisioned, run.agent_stops, run.powers_off, run.hangs) == (
        True,
        True,
        False,
        True,
    )
    run = scripts.ScriptRun()
    scripts._guest_effects(run, "echo bye; shutdown -h now")
    assert (run.deprovisioned, run.powers_off, run.hangs) == (False, True, True)
    run = scripts.ScriptRun()
    scripts._guest_effects(
        run, "systemd-run --on-active=120 /bin/sh -c 'waagent -deprovision -force && poweroff'"
    )
    assert not run.hangs and not run.deprovisioned
    assert run.later == [{"delay": 120.0, "deprovision": True, "shutdown": True}]
    run = scripts.ScriptRun()
    scripts._guest_effects(run, "systemd-run --on-active=10 waagent -deprovision -force")
    assert run.hangs and run.deprovisioned and run.later == []
