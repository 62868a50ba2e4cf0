"""The served OpenAPI document describes everything: every operation has a summary and a
description, every parameter, body field and response field a description, every response
(errors included) and header a description; and every endpoint, parameter, header and
error status of the seed page (docs/reference/seed-api-reference.txt) is in it, described.

The descriptions have one source each (gateway/openapi.py says which); this test reads the
document as the gateway serves it, at GET /openapi.json."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings

SEED = Path(__file__).parent.parent / "docs" / "reference" / "seed-api-reference.txt"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """GET /openapi.json of the gateway app (no services needed to serve it)."""
    app = create_app(GatewaySettings(database_path=tmp_path_factory.mktemp("described") / "db.sqlite"))

    async def served() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway") as http:
            reply = await http.get("/openapi.json")
            assert reply.status_code == 200, reply.text
            return reply.json()  # type: ignore[no-any-return]

    return asyncio.run(served())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def body_properties(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every field of the request body, over all its media types."""
    found: dict[str, dict[str, Any]] = {}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        found.update(resolve(document, content["schema"]).get("properties", {}))
    return found


def described(item: dict[str, Any]) -> bool:
    return bool(str(item.get("description", "")).strip())


# ---------------------------------------------------------------- everything is described


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        assert operation.get("summary", "").strip(), name
        assert described(operation), name
        # The summary is the docstring's first paragraph, not FastAPI's title-cased function name.
        assert operation["summary"] not in operation["description"], name


def test_every_parameter_and_body_field_is_described(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert described(parameter), (name, parameter["name"])
        if "requestBody" in operation:
            assert body_properties(document, operation), name
        for field, schema in body_properties(document, operation).items():
            assert described(schema), (name, field)


def test_every_response_and_header_is_described(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            assert described(response), (name, status)
            assert response["description"] != "Successful Response", (name, status)  # FastAPI's default
            for header, spec in response.get("headers", {}).items():
                assert described(spec), (name, status, header)
            assert "X-Request-Id" in response.get("headers", {}), (name, status)
            if "ErrorOut" not in str(response.get("content")):
                continue  # /readyz's 503 is its state, not the error JSON
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], (name, status)
            if status == "401":
                assert "WWW-Authenticate" in response["headers"], name


def test_every_field_of_every_schema_is_described(document: dict[str, Any]) -> None:
    """Response bodies too (models, voices, transcripts, tasks, errors)."""
    for model, schema in document["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            assert described(spec), (model, field)


def test_websocket_endpoints_are_described(document: dict[str, Any]) -> None:
    """OpenAPI has no WebSockets: the live voice chat is in the document's description and
    in its `x-websockets` extension, from the route's docstring."""
    live = document["x-websockets"]["/v1/voice-chat/live"]
    assert live["summary"] and "speechmesh.v1" in live["description"]
    assert "WebSocket /v1/voice-chat/live" in document["info"]["description"]


# ---------------------------------------------------------------- the seed page is covered


def seed_text() -> str:
    """The reference part of the page (its code examples are run by test_seed_examples.py)."""
    return SEED.read_text().split("\nCode-Beispiele\n")[0]


def seed_endpoints() -> dict[str, list[str]]:
    """`METHOD /path` of each endpoint the page documents, with the parameters of its tables
    (`name type ...` lines; the audio tools' run the type into the description)."""
    endpoints: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in seed_text().splitlines():
        endpoint = re.match(r"(GET|POST) (/v1/\S+)", line)
        if endpoint:
            current = endpoints.setdefault(f"{endpoint[1]} {endpoint[2]}", [])
            continue
        parameter = re.match(r"(\w+) (string|file|float|boolean|integer)", line)
        if parameter and current is not None:
            current.append(parameter[1])
    return endpoints


def test_the_seed_page_parses_as_expected() -> None:
    endpoints = seed_endpoints()
    assert len(endpoints) == 14
    assert endpoints["POST /v1/tts/"] == ["model", "text", "voice", "format", "speed", "language", "stream"]
    assert endpoints["POST /v1/audio/enhance/"] == [
        "file",
        "denoise",
        "enhance_clarity",
        "super_resolution",
        "strength",
    ]
    assert endpoints["GET /v1/voices/"] == ["model", "language", "gender"]


def test_every_seed_endpoint_and_parameter_is_documented(document: dict[str, Any]) -> None:
    documented = dict(operations(document))
    for name, parameters in seed_endpoints().items():
        assert name in documented, name
        operation = documented[name]
        fields = {**body_properties(document, operation)}
        fields.update({parameter["name"]: parameter for parameter in operation.get("parameters", [])})
        for parameter in parameters:
            assert parameter in fields, (name, parameter)
            assert described(fields[parameter]), (name, parameter)


def test_every_seed_header_is_documented(document: dict[str, Any]) -> None:
    headers = set(re.findall(r"\bX-[A-Za-z-]+", SEED.read_text()))
    assert headers == {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-Credits-Used",
        "X-Credits-Remaining",
    }
    for header in headers:
        specs = [
            response["headers"][header]
            for _, operation in operations(document)
            for response in operation["responses"].values()
            if header in response.get("headers", {})
        ]
        assert specs and all(described(spec) for spec in specs), header
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"  # Authorization: Bearer


def test_every_seed_error_is_documented(document: dict[str, Any]) -> None:
    errors = re.findall(r"^(\d{3}) (\w+) ", SEED.read_text(), re.M)
    assert len(errors) == 9
    for status, code in errors:
        responses = [
            operation["responses"][status] for _, operation in operations(document) if status in operation["responses"]
        ]
        assert responses, status
        for response in responses:
            if "ErrorOut" in str(response.get("content", {})):
                assert response["description"].startswith(f"{code}:"), (status, response["description"])
