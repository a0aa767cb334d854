"""movie-service's OpenAPI says what the code enforces (the answers themselves are tested in
test_catalog and test_admin)."""

from __future__ import annotations

from typing import Any

import pytest

from movie_service.config import MovieSettings
from movie_service.main import create_app

PATCH_BODIES = {
    "MovieUpdate": {"title", "duration_minutes", "genres", "synopsis"},
    "TheaterUpdate": {"name", "city", "address", "time_zone"},
    "AuditoriumUpdate": {"name", "layout"},
    "ShowtimeUpdate": {"starts_at", "currency", "prices"},
}


@pytest.fixture(scope="module")
def spec(settings: MovieSettings) -> dict[str, Any]:
    return create_app(settings).openapi()


def _mentions_null(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return "default" in schema or any(option.get("type") == "null" for option in options)


def test_operations_with_a_body_list_the_400_for_an_unreadable_one(spec: dict[str, Any]) -> None:
    operations = [op for path in spec["paths"].values() for op in path.values()]
    with_body = [op for op in operations if "requestBody" in op]
    assert len(with_body) == 8  # POST and PATCH of movies, theaters, auditoriums, showtimes
    assert all("400" in op["responses"] for op in with_body)
    assert not any("400" in op["responses"] for op in operations if "requestBody" not in op)


@pytest.mark.parametrize(("model", "not_null"), PATCH_BODIES.items())
def test_patch_bodies_may_omit_a_field_but_not_send_null(
    spec: dict[str, Any], model: str, not_null: set[str]
) -> None:
    schema = spec["components"]["schemas"][model]
    assert not schema.get("required") and schema["additionalProperties"] is False
    assert "not null" in schema["description"]
    refused = {name for name, field in schema["properties"].items() if not _mentions_null(field)}
    assert refused == not_null


def test_a_movie_patch_documents_the_fields_null_clears(spec: dict[str, Any]) -> None:
    properties = spec["components"]["schemas"]["MovieUpdate"]["properties"]
    assert {"type": "null"} in properties["rating"]["anyOf"]
    assert {"type": "null"} in properties["poster_url"]["anyOf"]


def test_showtime_dates_document_their_rules(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/showtimes"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert "requires date_from" in parameters["date_to"]["description"]
    for name in ("date", "date_from", "date_to"):
        assert "YYYY-MM-DD" in parameters[name]["description"]
        assert {"type": "string", "format": "date"} in parameters[name]["schema"]["anyOf"]
    assert "422" in operation["responses"] and "`date_to` without `date_from`" in operation["description"]
    movies = {p["name"]: p for p in spec["paths"]["/movies"]["get"]["parameters"]}
    assert "YYYY-MM-DD" in movies["date"]["description"]
