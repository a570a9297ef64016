"""The live suite's specs stay valid without Azure: each variant loads as a spec, and
the Trusted Launch variant asks for what it is named after (tests/live/test_live.py)."""

from __future__ import annotations

import pytest
import yaml

from batchimage.spec.load import load_spec_text
from tests.live.test_live import VARIANTS, variant_spec

ENV = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-4000-8000-000000000001",
    "BATCHIMAGE_LIVE_BATCH_ACCOUNT": "livebatch",
    "BATCHIMAGE_LIVE_BATCH_GROUP": "live-batch-rg",
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_live_variant_is_a_valid_spec(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    data = variant_spec(variant, "abc123", "bi-live-abc123", f"bi-live-{variant}-abc123")
    spec = load_spec_text(yaml.safe_dump(data), "live.yaml")
    assert spec.pools[0].dedicated_nodes == 1 and spec.pools[0].smoke_test is not None
    assert spec.os_type == ("windows" if variant == "windows" else "linux")
    security = spec.image.capture.gallery.definition.security_type
    assert (security == "TrustedLaunch") == (variant == "trustedlaunch")
