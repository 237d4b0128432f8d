"""Datasets: registered S3 dataset repositories with metadata, promotion, attachments, access and audit, under
the Spinup ds-api's routes (`/v1/ds/...`). See README.md.

`mount(runtime, settings, authenticator)` is found by `generator.mounts`: it creates this package's tables and
answers for `/v1/ds`, authenticating its requests itself (the seed's pre-shared key, or the platform's bearer
tokens). A missing or wrong DATASETS_CONFIG never stops the service: `/v1/ds/...` answers 503 saying why."""

from __future__ import annotations

from typing import Any

from generator.datasets import config, links, tables
from generator.datasets.routes import PREFIX, DatasetsApp
from generator.datasets.service import Datasets
from generator.mounts import Mount


def mount(runtime: Any, settings: Any, authenticator: Any) -> Any:
    engine = runtime.engine
    tables.ensure_tables(engine)

    def build(loaded: config.DatasetsConfig) -> Datasets:
        return Datasets(engine, loaded, used_by=lambda row: links.used_by(engine, row))

    app = DatasetsApp(config.load, build, authenticator.authenticate, settings.production)
    if app.service is not None:
        links.activate(engine)  # data-product sources of type DATASET are checked from now on
    return Mount(prefix=PREFIX, app=app, authenticates_itself=True)
