"""Errors the sandbox answers with, rendered in the shape of the API plane that raised them.

ARM: `{"error": {"code", "message", "target"?, "details"?}}`; Batch data plane (OData):
`{"odata.metadata", "code", "message": {"lang", "value"}, "values"?}`; Entra token endpoint:
`{"error", "error_description", "error_codes"}`. Handlers raise `ApiError`; the app renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """An HTTP error answer: status, Azure error code, message, optional target/details."""

    status: int
    code: str
    message: str
    target: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    values: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def arm_body(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            inner["target"] = self.target
        if self.details:
            inner["details"] = self.details
        return {"error": inner}

    def batch_body(self, base_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "odata.metadata": f"{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities"
            ".Container.errors/@Element",
            "code": self.code,
            "message": {"lang": "en-US", "value": self.message},
        }
        if self.values:
            body["values"] = self.values
        return body

    def oauth_body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.message, "error_codes": []}


class Unreachable(Exception):
    """The request's host does not resolve in Azure (e.g. an unknown Key Vault): the app
    drops the connection instead of answering."""


def bad_request(code: str, message: str, target: str | None = None) -> ApiError:
    return ApiError(400, code, message, target=target)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def missing_api_version() -> ApiError:
    return bad_request(
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def subscription_not_found(subscription: str) -> ApiError:
    return not_found(
        "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
    )


def resource_group_not_found(group: str) -> ApiError:
    return not_found("ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def resource_not_found(type_path: str, name: str, group: str) -> ApiError:
    return not_found(
        "ResourceNotFound",
        f"The Resource '{type_path}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def invalid_request_content(message: str) -> ApiError:
    return bad_request("InvalidRequestContent", message)
