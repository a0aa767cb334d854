"""Rules the request models share, enforced and documented in one place: dates are
``YYYY-MM-DD`` only; a PATCH body may leave a field out but not send it as null."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: Any) -> Any:
    """Refuse what ``format: date`` does not allow but pydantic's lax date would take.

    Lax mode reads a number as a Unix timestamp ("0" is 1970-01-01) and takes a datetime at
    midnight ("2026-01-01T00:00:00Z"): a filter would then answer 200 for nonsense.
    """
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_format", "Input should be a date as YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


class PatchBody(BaseModel):
    """A PATCH body: a field left out stays as it is; one in ``not_null`` may not be sent as null.

    The rule is written once, in ``not_null``, and both refused (422) and left out of the
    OpenAPI schema from there, so the document cannot say ``null`` where the code refuses it.
    """

    model_config = ConfigDict(extra="forbid")
    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _refuse_null(self) -> Self:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        properties = handler.resolve_ref_schema(schema)["properties"]
        for name in cls.not_null:
            properties[name] = _without_null(properties[name])
        return schema


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    """A field's schema with ``null`` out of its ``anyOf`` and no ``default: null``."""
    options = [option for option in field.get("anyOf", []) if option != {"type": "null"}]
    rest = {key: value for key, value in field.items() if key not in ("anyOf", "default")}
    if len(options) == 1:
        return {**options[0], **rest}
    return {**rest, "anyOf": options} if options else rest
