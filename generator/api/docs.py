"""Swagger UI at `/ui`, built once for the life of the process.

The page always loads `/openapi.json`, which the dispatcher answers with the current generation's
document, so the UI needs no rebuild when a generation is swapped in, and generated apps skip Connexion's
Swagger UI middleware (a second routing pass on every request)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from generator.codec import dumps


def build_docs_app(spec_url: str = "/openapi.json", prefix: str = "/ui") -> Starlette:
    template_dir = Path(swagger_ui_path)
    templates = Environment(loader=FileSystemLoader(template_dir), autoescape=select_autoescape())
    page = templates.get_template("index.j2").render(openapi_spec_url=spec_url)

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def slash(_: Request) -> RedirectResponse:
        return RedirectResponse(f"{prefix}/")

    async def problem(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        body = {"type": "about:blank", "title": "Not Found" if status == 404 else "Error", "status": status,
                "detail": "Swagger UI has no such file" if status == 404 else "Swagger UI failed"}
        return Response(dumps(body), status, media_type="application/problem+json")

    return Starlette(exception_handlers={HTTPException: problem}, routes=[
        Route(prefix, slash),
        Route(f"{prefix}/", index),
        Route(f"{prefix}/index.html", index),
        Mount(prefix, app=StaticFiles(directory=template_dir)),
    ])  # fmt: skip
