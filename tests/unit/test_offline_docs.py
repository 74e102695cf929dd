"""``jobs.docs_router``: Swagger UI from the files shipped inside jobwire, never a CDN."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import httpx
from fastapi import FastAPI

from jobwire import Jobwire
from jobwire.api.docs import ASSETS, SWAGGER_UI_VERSION

SHIPPED = resources.files("jobwire.api").joinpath("static", "swagger-ui")


def app_with_docs(prefix: str = "", **fastapi: object) -> FastAPI:
    jobs = Jobwire("memory://")
    app = FastAPI(docs_url=None, redoc_url=None, **fastapi)  # type: ignore[arg-type]
    app.include_router(jobs.router, prefix="/jobs")
    app.include_router(jobs.docs_router, prefix=prefix)
    return app


async def get(app: FastAPI, path: str, root_path: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


def urls_in(page: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page)


async def test_the_page_loads_swagger_ui_only_from_this_server() -> None:
    app = app_with_docs()
    page = await get(app, "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = urls_in(page.text)
    assert urls and all(url.startswith("/") for url in urls), urls
    assert "/openapi.json" in urls
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/static/{name}?v={SWAGGER_UI_VERSION}" in urls
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    assert (await get(app, "/redoc")).status_code == 404  # FastAPI's CDN pages are off


async def test_every_shipped_file_is_served_as_shipped() -> None:
    app = app_with_docs()
    for name, media_type in ASSETS.items():
        answer = await get(app, f"/docs/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media_type
        assert answer.content == SHIPPED.joinpath(name).read_bytes()
    assert (await get(app, "/docs/static/VERSION.md")).status_code == 404
    assert (await get(app, "/docs/static/..%2F..%2Fdocs.py")).status_code == 404
    assert (await get(app, "/docs/oauth2-redirect")).status_code == 200


def test_the_shipped_files_are_the_pinned_release_with_its_licence() -> None:
    record = SHIPPED.joinpath("VERSION.md").read_text()
    assert f"swagger-ui-dist@{SWAGGER_UI_VERSION}" in record
    sums = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", record, re.M))
    assert set(sums) == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
    for name, digest in sums.items():
        assert hashlib.sha256(SHIPPED.joinpath(name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in SHIPPED.joinpath("LICENSE").read_text()


async def test_the_page_follows_a_prefix_and_the_root_path() -> None:
    page = await get(app_with_docs(prefix="/api"), "/api/docs", root_path="/svc")
    assert page.status_code == 200
    urls = urls_in(page.text)
    assert "/svc/openapi.json" in urls
    assert f"/svc/api/docs/static/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}" in urls


async def test_an_app_without_an_openapi_document_has_no_docs_page() -> None:
    page = await get(app_with_docs(openapi_url=None), "/docs")
    assert page.status_code == 404
    assert "openapi_url=None" in page.text
