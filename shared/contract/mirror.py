"""A msgspec mirror of the CloudEvent envelope: its checks, run in C, on the attributes a record's
headers carry (about 2.5 µs an envelope, against 3.6-3.9 by the model, measured apart); and
``assembled``, the one way to build a model from values already checked.

The pydantic model stays the one definition; the mirror is derived from its fields at import
time and may only be as strict as the model or stricter. What it refuses is checked again by the
model, which gives the reason a dead letter carries; what it accepts is built into the model's own
class without a second check. Payloads are not mirrored: pydantic-core reads them from JSON
bytes as fast as a mirror does (measured per type, bench.decode).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from shared.contract.types import EARLIEST, LATEST, _to_utc

M = TypeVar("M", bound=BaseModel)
Convert = Callable[[Any], Any]
"""What turns a mirror's value into the model's (a number from its text, a moment in UTC)."""
Precheck = Callable[[str], bool]
"""Whether a field's text is in a form that the mirror reads as the model does."""

_new = object.__new__
_set = object.__setattr__
# The slots pydantic gives every model, set as its own ``model_construct`` sets them, without the
# lookups: this runs for every record read, and for every state ``evolve`` makes.
_slots: Mapping[str, Any] = vars(BaseModel)
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__
_MOMENT = Annotated[datetime, msgspec.Meta(tz=True)]


class Unmirrored(Exception):
    """The model has a check that the mirror cannot express."""


class Refused(ValueError):
    """The mirror refused the value: the model must check it."""


class Mirror:
    """A mirror of a model's fields but ``without``, read from their text (as headers carry them)."""

    def __init__(self, model: type[BaseModel], without: frozenset[str] = frozenset()) -> None:
        _refuse_custom_checks(model)
        self.model = model
        self.checks = [d.func for d in model.__pydantic_decorators__.model_validators.values()]
        kinds = {
            name: _kind(info.annotation, list(info.metadata))
            for name, info in model.model_fields.items()
            if name not in without
        }
        self.struct = msgspec.defstruct(
            f"{model.__name__}Mirror",
            [_struct_field(name, kind, model.model_fields[name]) for name, (kind, _, _) in kinds.items()],
            forbid_unknown_fields=True,
            frozen=True,
            kw_only=True,
        )
        self._typed = [(name, convert) for name, (kind, convert, _) in kinds.items() if convert or _is_enum(kind)]
        # Every field in the model's order, as pydantic keeps them: its serializers follow it.
        self._template: dict[str, Any] = {
            name: None if info.is_required() else info.default for name, info in model.model_fields.items()
        }
        self._prechecks = [(name, precheck) for name, (_, _, precheck) in kinds.items() if precheck is not None]

    def values(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """The fields' checked values from their text, or ``Refused``."""
        try:
            for name, precheck in self._prechecks:
                if (text := texts.get(name)) is not None and not precheck(text):
                    raise Refused(f"{name} is written in a form left to the model")
            mirrored = msgspec.convert(texts, self.struct)
            # A text is its own value but for the fields read into something else (an enum
            # member, a number, a moment): cheaper than making a dict of the whole Struct.
            values: dict[str, Any] = {**self._template, **texts}
            for name, convert in self._typed:
                if (value := getattr(mirrored, name)) is not None:
                    values[name] = value if convert is None else convert(value)
            return values
        except (msgspec.ValidationError, ValueError) as error:
            raise Refused(str(error)) from error

    def build(self, values: dict[str, Any], given: AbstractSet[str]) -> BaseModel:
        """The model of values already checked, as pydantic builds it from ``given`` fields; the
        model's after-checks run, ``Refused`` if one fails."""
        instance = assembled(self.model, values, given)
        try:
            for check in self.checks:
                if check(instance) is not instance:
                    raise Refused(f"a check of {self.model.__name__} gave another instance")
        except ValueError as error:
            raise Refused(str(error)) from error
        return instance


def assembled(model: type[M], values: dict[str, Any], given: AbstractSet[str]) -> M:
    """An instance of ``model`` holding ``values`` that are already checked, as pydantic holds
    them after validating the ``given`` fields; nothing is checked again."""
    instance = _new(model)
    _set(instance, "__dict__", values)
    _set_fields_set(instance, given)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def _is_enum(kind: Any) -> bool:
    return any(_is_enum(arg) for arg in get_args(kind)) or (isinstance(kind, type) and issubclass(kind, enum.Enum))


def _refuse_custom_checks(model: type[BaseModel]) -> None:
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.validators or decorators.root_validators:
        raise Unmirrored(f"{model.__name__} has field validators")
    if any(d.info.mode != "after" for d in decorators.model_validators.values()):
        raise Unmirrored(f"{model.__name__} has a model validator that runs before its fields' checks")
    if model.model_config.get("extra") != "forbid" or model.model_post_init is not BaseModel.model_post_init:
        raise Unmirrored(f"{model.__name__} accepts extra fields or runs code after its checks")


def _struct_field(name: str, kind: Any, info: FieldInfo) -> tuple[str, Any] | tuple[str, Any, Any]:
    if info.default_factory is not None:
        raise Unmirrored("a default factory")
    if info.is_required():
        return name, kind
    if not isinstance(info.default, str | int | type(None)):
        raise Unmirrored(f"a default of type {type(info.default).__name__}")
    return name, kind, info.default


def _kind(annotation: Any, metadata: list[Any]) -> tuple[Any, Convert | None, Precheck | None]:
    """The mirror's type of a field's text, what makes the model's value of it, and which texts
    the mirror reads as the model does."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(present) != 1 or len(get_args(annotation)) != 2:
            raise Unmirrored(f"a union {annotation!r}")
        kind, convert, precheck = _kind(present[0], metadata)
        return kind | None, convert, precheck
    if annotation is str:
        return Annotated[str, _string_meta(metadata)], None, None
    if origin is Literal and all(isinstance(choice, str) for choice in get_args(annotation)) and not metadata:
        return annotation, None, None
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum) and not metadata:
        return annotation, None, None
    if annotation is int:
        return str, _number(metadata), None
    if annotation is AwareDatetime:
        if [type(m) for m in metadata] != [AfterValidator] or metadata[0].func is not _to_utc:
            raise Unmirrored(f"a moment checked by {metadata!r}")
        return _MOMENT, _in_utc, _read_alike
    raise Unmirrored(f"no mirror for {annotation!r} with {metadata!r}")


def _string_meta(metadata: list[Any]) -> msgspec.Meta:
    bounds: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.MinLen):
            bounds["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            bounds["max_length"] = item.max_length
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            bounds["pattern"] = _anchored(str(vars(item)["pattern"]))
        else:
            raise Unmirrored(f"a string constraint {item!r}")
    return msgspec.Meta(**bounds)


def _anchored(pattern: str) -> str:
    """The pattern as pydantic's Rust engine reads it, for Python's: ``$`` is the end of the text
    there, while Python's also matches before a final newline."""
    if "$" in pattern[:-1] or "\\" in pattern or "(?" in pattern:
        raise Unmirrored(f"a pattern {pattern!r}")
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


def _number(metadata: list[Any]) -> Convert:
    """A number from its text, within the field's bounds; only a number written plainly (the
    model reads more, such as ``"007"``, and is left to)."""
    low, high = 0, 2**63
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = max(low, int(item.ge))  # type: ignore[call-overload]  # a bound of an int field
        elif isinstance(item, annotated_types.Le):
            high = min(high, int(item.le))  # type: ignore[call-overload]  # a bound of an int field
        else:
            raise Unmirrored(f"a number constraint {item!r}")

    def number(text: str) -> int:
        if not (text.isascii() and text.isdigit() and text[0] != "0" and len(text) < 20):
            raise Refused("not a number written plainly")
        value = int(text)
        if not low <= value <= high:
            raise Refused(f"{value} is out of bounds")
        return value

    return number


def _read_alike(text: str) -> bool:
    """msgspec rounds a fraction of more than six digits where pydantic cuts it off. Six digits
    at most make a moment of at most 27 characters in UTC ("Z"), 32 with an offset "+08:00" and 31
    with "+0800"; longer ones are left to the model."""
    if text[-1:] in ("Z", "z"):
        return len(text) <= 27
    return len(text) <= (32 if text[-3:-2] == ":" else 31)


def _in_utc(moment: datetime) -> datetime:
    # Most moments on the log are written in UTC already: only the calendar's bounds are left.
    if moment.tzinfo is UTC and EARLIEST <= moment <= LATEST:
        return moment
    return _to_utc(moment)
