"""Data products (control plane): products, their sources, pipelines and servings, access grants, IAM policy
documents, team keys, the audit log, and the `Catalog` the data plane's policies read (see README.md).

Importing this package registers its `drg_*` tables on `platform_metadata`, so they are created at boot."""

from generator.products.catalog import (
    Catalog,
    KeyEntry,
    ProductEntry,
    ResourceEntry,
    ServingEntry,
    Tenancy,
    catalog,
    invalidate,
)
from generator.products.credentials import lookup_team_key
from generator.products.generation import ProductClaim, check_generation, record_generation, record_generation_in

ROOTS = frozenset({"data-products", "teams", "audit"})  # first path segments the dispatcher sends to admin

__all__ = [
    "ROOTS", "Catalog", "KeyEntry", "ProductClaim", "ProductEntry", "ResourceEntry", "ServingEntry", "Tenancy",
    "catalog", "check_generation", "invalidate", "lookup_team_key", "record_generation", "record_generation_in",
]
