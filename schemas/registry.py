"""A registry of record types: name and version per class, and upcasters for old versions.

Serialisation is kept in one place: a typed record goes to `(type, version, data)` and back.
Reading data written with an older version runs it through the upcasters registered for each
step (`from_version` to `from_version + 1`) until it has the current shape, then decodes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec

#: Turns the `data` of version N into the `data` of version N + 1.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

P = TypeVar("P", bound=msgspec.Struct)


class MapperError(ValueError):
    """A record could not be mapped to or from its serialised form."""


class UnknownType(MapperError):
    """A type this code does not know: a consumer of events skips it."""

    def __init__(self, kind: str, type_name: str) -> None:
        super().__init__(f"unknown {kind} type {type_name!r}")
        self.type_name = type_name


class UnsupportedVersion(MapperError):
    """A known type, but a version newer than this code (or with no upcaster path)."""


class MalformedData(MapperError):
    """The `data` does not fit its type's schema; the message names the field."""


class TypeRegistry(Generic[P]):
    """The record classes of one kind (commands or events), by their envelope `type`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, tuple[type[P], int]] = {}
        self._by_class: dict[type[P], tuple[str, int]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(
        self, cls: type[P], *, type_name: str | None = None, version: int | None = None
    ) -> None:
        """Know `cls` as `type_name` at `version` (default: its TYPE and VERSION class vars)."""
        name = type_name or str(getattr(cls, "TYPE"))  # noqa: B009 (a ClassVar mypy can't see)
        current = version if version is not None else int(getattr(cls, "VERSION"))  # noqa: B009
        if name in self._classes:
            raise ValueError(f"{self.kind} type {name!r} registered twice")
        self._classes[name] = (cls, current)
        self._by_class[cls] = (name, current)

    def register_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """Upgrade `type_name` data of `from_version` to `from_version + 1`."""
        cls_version = self._classes.get(type_name)
        if cls_version is None:
            raise UnknownType(self.kind, type_name)
        if not 1 <= from_version < cls_version[1]:
            raise ValueError(f"{type_name} is at version {cls_version[1]}: no upcaster from it")
        self._upcasters[(type_name, from_version)] = upcaster

    def knows(self, type_name: str) -> bool:
        """Whether `type_name` is a registered type."""
        return type_name in self._classes

    def types(self) -> list[tuple[str, type[P], int]]:
        """Every registered type as (name, class, current version), in registration order."""
        return [(name, cls, version) for name, (cls, version) in self._classes.items()]

    def to_data(self, record: P) -> tuple[str, int, dict[str, Any]]:
        """(type, current version, data as plain JSON values) of a typed record."""
        entry = self._by_class.get(type(record))
        if entry is None:
            raise UnknownType(self.kind, type(record).__name__)
        # Through JSON, so tuples become lists: the data equals what a reader decodes.
        data = msgspec.json.decode(msgspec.json.encode(record))
        return entry[0], entry[1], data

    def from_data(self, type_name: str, version: int, data: Mapping[str, Any]) -> P:
        """The typed record of `data` written as `type_name` at `version`, upcast if older."""
        entry = self._classes.get(type_name)
        if entry is None:
            raise UnknownType(self.kind, type_name)
        cls, current = entry
        if version > current:
            raise UnsupportedVersion(f"{type_name} version {version} is newer than {current}")
        upgraded = dict(data)
        for step in range(version, current):
            upcaster = self._upcasters.get((type_name, step))
            if upcaster is None:
                raise UnsupportedVersion(f"no upcaster for {type_name} from version {step}")
            upgraded = upcaster(upgraded)
        try:
            return msgspec.convert(upgraded, cls)
        except msgspec.ValidationError as exc:
            raise MalformedData(f"{type_name}: {exc}") from exc
