"""Datasets as data-product sources: the one module here that reads the products' tables.

Once a service has the datasets system configured (`activate(engine)`, called by `mount`), a data product's
source of type DATASET must name a registered dataset by id or name (`check_source`, called by the products'
handler: 400 otherwise), a product's page lists the datasets its sources name (`product_datasets`), and a
dataset named by a source cannot be deleted (`used_by`: the products, for a 409). Without a configuration
there is no registry to check against, and a dataset stays a name, as before."""

from __future__ import annotations

import json
import re
import weakref
from typing import Any

from sqlalchemy import Engine, select

from generator.datasets import store
from generator.errors import Issue, bad_request
from generator.models.engine import reading

_active: weakref.WeakSet[Engine] = weakref.WeakSet()
SOURCE_TYPE = "DATASET"


def activate(engine: Engine) -> None:
    _active.add(engine)


def active(engine: Engine) -> bool:
    return engine in _active


def check_source(engine: Engine, body: dict[str, Any]) -> None:
    """400 when a DATASET source does not name a registered dataset (only when datasets are configured)."""
    if not active(engine) or str(body.get("sourceType", "")).upper() != SOURCE_TYPE:
        return
    name = body.get("datasetName")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("A DATASET source names its dataset", [Issue("/datasetName", "is required: the id or "
                                                                                       "name of a registered dataset")])
    if not store.named(engine, name):
        raise bad_request(f"No registered dataset has the id or name {name!r}",
                          [Issue("/datasetName", f"names no dataset registered under /v1/ds: {name!r}")])


def product_datasets(engine: Engine, sources: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The datasets a product's sources name (None when datasets are not configured)."""
    if not active(engine):
        return None
    found = []
    for source_name, source in sources.items():
        if str(source.get("sourceType", "")).upper() != SOURCE_TYPE or not source.get("datasetName"):
            continue
        for row in store.named(engine, str(source["datasetName"])):
            found.append({"sourceName": source_name, "id": row.id, "name": row.name, "account": row.account,
                          "group": row.group, "repository": row.repository, "finalized": row.finalized,
                          "data_classifications": row.metadata.get("data_classifications", [])})
    return found


def used_by(engine: Engine, row: store.Row) -> list[str]:
    """The data products with a DATASET source naming this dataset (by id or name), sorted."""
    from generator.products.tables import sources  # the products' table; imported when asked

    def run(connection: Any) -> list[str]:
        products = set()
        for product, body in connection.execute(select(sources.c.product, sources.c.body)):
            source = json.loads(body)
            if (str(source.get("sourceType", "")).upper() == SOURCE_TYPE
                    and source.get("datasetName") in (row.id, row.name)):
                products.add(product)
        return sorted(products)

    return reading(engine, run)


SENSITIVE_CLASSES = frozenset({"pii", "hipaa"})
SENSITIVE_NAME = re.compile(r"e[-_]?mail|ssn|social[-_]?security|phone|birth|dob|address", re.IGNORECASE)


def sensitive_field_warnings(engine: Engine, generation: Any) -> list[str]:
    """Warnings for a generation (for its answer's `warnings`): a resource fed from a dataset classified `pii`
    or `hipaa` (a data product's api serving names the resource and the product has a DATASET source naming
    the dataset) whose sensitive-looking fields (email, ssn, phone, birth, address, ...) are not `protected`.
    The admin handler of `POST /generator` adds them to its answer."""
    if not active(engine):
        return []
    from generator.products.catalog import catalog  # the products' snapshot; imported when asked

    snapshot = catalog(engine)
    warnings = []
    for resource in generation.resources:
        exposed = [f.name for f in resource.fields if SENSITIVE_NAME.search(f.name) and not f.protected]
        entry = snapshot.resource(resource.name)
        if not exposed or entry is None:
            continue
        products = {s.product for s in entry.servings} | ({entry.product} if entry.product else set())
        for dataset, classes in _classified(engine, products):
            warnings.append(f"Resource {resource.name!r} is fed from dataset {dataset!r}, classified "
                            f"{', '.join(classes)}, but field(s) {', '.join(exposed)} look sensitive and are not "
                            "protected: mark them \"protected\" in the table schema")
    return warnings


def _classified(engine: Engine, products: set[str]) -> list[tuple[str, list[str]]]:
    """(dataset name, its sensitive classifications) for the DATASET sources of these products."""
    from generator.products.tables import sources

    query = select(sources.c.body).where(sources.c.product.in_(sorted(products)))
    found: dict[str, list[str]] = {}
    for body in reading(engine, lambda c: list(c.execute(query).scalars())):
        source = json.loads(body)
        if str(source.get("sourceType", "")).upper() != SOURCE_TYPE or not source.get("datasetName"):
            continue
        for row in store.named(engine, str(source["datasetName"])):
            classes = sorted(SENSITIVE_CLASSES & set(row.metadata.get("data_classifications", [])))
            if classes:
                found[row.name] = classes
    return sorted(found.items())
