"""Layer 1: payload parsing and validation (pure; no database or web imports)."""

from generator.payload.parse import parse_payload
from generator.payload.specs import (
    FieldSpec,
    ForeignKeySpec,
    Generation,
    ManyToManySpec,
    OperationSpec,
    ResourceSpec,
)

__all__ = [
    "FieldSpec",
    "ForeignKeySpec",
    "Generation",
    "ManyToManySpec",
    "OperationSpec",
    "ResourceSpec",
    "parse_payload",
]
