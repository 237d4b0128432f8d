"""Frozen specs a payload parses into. Later layers build tables, routes and handlers from these alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.payload.operations import OperationInfo, OperationKind, info, served_path

FIELD_TYPES = (
    "string", "integer", "number", "boolean", "object", "array", "date", "time",
    "datetime", "year", "yearmonth", "duration", "geopoint", "geojson", "any",
)  # fmt: skip
JSON_TYPES = frozenset({"object", "array", "geojson", "geopoint", "any"})
ANY_FIELD = "*"  # the `encryptionSchema` key that covers every field of a table (or of every table)


@dataclass(frozen=True)
class EncryptionEntry:
    """One `encryptionSchema` entry as written: engine name, the variable naming the key, older variables.

    Names only: the variables are read (and the engine name checked) by `generator.crypto` at generation."""

    type: str
    key: str
    previous_keys: tuple[str, ...] = ()
    pointer: str = field(default="", compare=False, hash=False)  # where it was declared, for error reports


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "string"
    format: str | None = None
    title: str | None = None
    description: str | None = None
    required: bool = False
    unique: bool = False
    enum: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: Any = None
    maximum: Any = None
    pattern: str | None = None
    protected: bool = False  # stored encrypted (`generator.crypto`)
    searchable: bool = False  # protected and given a blind index, so equality filters still work

    @property
    def is_uuid(self) -> bool:
        return self.type == "string" and self.format == "uuid"


@dataclass(frozen=True)
class ForeignKeySpec:
    fields: tuple[str, ...]
    resource: str  # lowercased table name; the table itself for a self-reference
    reference_fields: tuple[str, ...]


@dataclass(frozen=True)
class ResourceSpec:
    """One table: its fields in declared order and its primary key (one or more field names)."""

    name: str
    fields: tuple[FieldSpec, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKeySpec, ...] = ()
    title: str | None = None
    description: str | None = None
    encryption: tuple[tuple[str, EncryptionEntry], ...] = ()  # the entry's `encryptionSchema`, field or "*"
    pointer: str = field(default="", compare=False, hash=False)  # its tableSchema in the payload

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    def field_pointer(self, name: str) -> str:
        """The JSON pointer of a field's declaration (`.../tableSchema/fields/<j>`), for error reports."""
        index = next(i for i, f in enumerate(self.fields) if f.name == name)
        return f"{self.pointer}/fields/{index}"

    def encryption_entry(self, name: str) -> EncryptionEntry | None:
        """This table's own entry for field `name`: its name first, then the table's "*"."""
        entries = dict(self.encryption)
        return entries.get(name) or entries.get(ANY_FIELD)

    @property
    def protected_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.protected)

    @property
    def key_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(self.field(n) for n in self.primary_key)

    @property
    def autoincrement(self) -> bool:
        """A single integer key is assigned by the database when a client leaves it out."""
        return len(self.primary_key) == 1 and self.key_fields[0].type == "integer"


@dataclass(frozen=True)
class ManyToManySpec:
    left: str
    right: str

    @property
    def table_name(self) -> str:
        return f"{self.left}_{self.right}"


@dataclass(frozen=True)
class OperationSpec:
    """A whitelisted operation: which resource, what it does, and the payload's own words for it."""

    resource: str
    kind: OperationKind
    method: str
    path: str  # as the payload wrote it
    summary: str | None = None
    description: str | None = None
    related: str | None = None  # the child resource of a /<parent>/{pk}/<child> route

    @property
    def info(self) -> OperationInfo:
        return info(self.kind, self.method)

    @property
    def served_path(self) -> str:
        return served_path(self.info.shape, self.resource, self.related)


@dataclass(frozen=True)
class Generation:
    """Everything one payload asks for. `digest` identifies the payload (same payload, same digest)."""

    resources: tuple[ResourceSpec, ...]
    many_to_many: tuple[ManyToManySpec, ...]
    operations: tuple[OperationSpec, ...]
    title: str
    description: str
    version: str
    digest: str
    touch_database: bool = True
    allow_destructive: bool = False  # schema evolution may drop columns, narrow types (models/evolution.py)
    warnings: tuple[str, ...] = ()
    encryption: tuple[tuple[str, EncryptionEntry], ...] = ()  # `data.encryptionSchema`: only "*"
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def resource(self, name: str) -> ResourceSpec:
        return next(r for r in self.resources if r.name == name)

    def encryption_entry(self, resource: ResourceSpec, name: str) -> EncryptionEntry | None:
        """The key entry for a field: the field's name, then the table's "*", then the global "*"."""
        return resource.encryption_entry(name) or dict(self.encryption).get(ANY_FIELD)

    def operations_for(self, name: str) -> tuple[OperationSpec, ...]:
        return tuple(op for op in self.operations if op.resource == name)
