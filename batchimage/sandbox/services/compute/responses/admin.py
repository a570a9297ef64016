"""The admin endpoint's marketplace routes: publish a new version of a catalogue SKU (as a
publisher releases one), list what was published, withdraw it again (the sandbox's own API,
not Azure's: its errors are the admin plane's)."""

from __future__ import annotations

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute.models import deprecation, published

FIELDS = ("publisher", "offer", "sku", "version")


def list_published(call: Call) -> Reply:
    """Every published version (`at`: the simulated time it is listed from)."""
    return Reply(200, {"value": published.published(call.world)})


def publish(call: Call) -> Reply:
    """`{"publisher", "offer", "sku", "version", "after_s"?}` -> the published version."""
    body = call.json_object()
    missing = [k for k in FIELDS if not body.get(k)]
    if missing:
        raise ApiError(400, "InvalidValue", f"missing {', '.join(missing)}")
    try:
        after = float(body.get("after_s") or 0)
        record = published.publish(call.world, *(str(body[k]) for k in FIELDS), after_s=after)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
    return Reply(200, record)


def withdraw(call: Call) -> Reply:
    """Forget one published version (404 when it was not published)."""
    p = call.params
    if not published.withdraw(call.world, *(p[k] for k in FIELDS)):
        urn = ":".join(p[k] for k in FIELDS)
        raise ApiError(404, "NotFound", f"{urn} was not published through the admin endpoint")
    deprecation.forget(call.world, *(p[k] for k in FIELDS))
    return Reply(204, None)


def deprecate(call: Call) -> Reply:
    """`{"publisher", "offer", "sku", "version", "imageState", "scheduledDeprecationTime"?,
    "alternativeOption"?}` -> the version's deprecation status (`Active` clears it)."""
    body = call.json_object()
    missing = [k for k in (*FIELDS, "imageState") if not body.get(k)]
    if missing:
        raise ApiError(400, "InvalidValue", f"missing {', '.join(missing)}")
    try:
        record = deprecation.mark(
            call.world,
            *(str(body[k]) for k in FIELDS),
            state=str(body["imageState"]),
            scheduled=body.get("scheduledDeprecationTime"),
            alternative=body.get("alternativeOption"),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
    return Reply(200, record)
