"""Swagger UI at `/ui`, built once for the life of the process.

The page always loads `/openapi.json`, which the dispatcher answers with the current generation's
document, so the UI needs no rebuild when a generation is swapped in, and generated apps skip Connexion's
Swagger UI middleware (a second routing pass on every request)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path


def build_docs_app(spec_url: str = "/openapi.json", prefix: str = "/ui") -> Starlette:
    template_dir = Path(swagger_ui_path)
    templates = Environment(loader=FileSystemLoader(template_dir), autoescape=select_autoescape())
    page = templates.get_template("index.j2").render(openapi_spec_url=spec_url)

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def slash(_: Request) -> RedirectResponse:
        return RedirectResponse(f"{prefix}/")

    return Starlette(routes=[
        Route(prefix, slash),
        Route(f"{prefix}/", index),
        Route(f"{prefix}/index.html", index),
        Mount(prefix, app=StaticFiles(directory=template_dir)),
    ])  # fmt: skip
