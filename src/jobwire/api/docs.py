"""``/docs`` served from the Swagger UI files shipped inside jobwire, so the console works
without a network. FastAPI's own ``/docs`` loads Swagger UI from a CDN: turn it off and
include this router instead::

    app = FastAPI(lifespan=jobs.lifespan, docs_url=None, redoc_url=None)
    app.include_router(jobs.docs_router)

The files are an unmodified copy of ``swagger-ui-dist`` at ``SWAGGER_UI_VERSION`` with
its licence (``static/swagger-ui/``; ``VERSION.md`` there records where they came from).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

SWAGGER_UI_VERSION = "5.35.0"

#: The shipped files the page and its readers may fetch, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}
ASSET_ROUTE = "jobwire_swagger_ui_asset"
OAUTH2_ROUTE = "jobwire_swagger_ui_oauth2_redirect"


@cache
def asset(name: str) -> bytes:
    """A shipped Swagger UI file's bytes (read once per process)."""
    folder = resources.files("jobwire.api").joinpath("static", "swagger-ui")
    return folder.joinpath(name).read_bytes()


def build_docs_router(path: str = "/docs", title: str | None = None) -> APIRouter:
    """Swagger UI at ``path`` for the including app's OpenAPI document, its files under
    ``path/static/``, and the OAuth2 redirect page Swagger UI uses at
    ``path/oauth2-redirect``. ``title`` defaults to the app's title."""
    router = APIRouter(include_in_schema=False)

    @router.get(path, response_class=HTMLResponse)
    async def docs(request: Request) -> HTMLResponse:
        app = request.app
        if app.openapi_url is None:
            raise HTTPException(404, "this app serves no OpenAPI document (openapi_url=None)")

        def url(route: str, **params: str) -> str:
            return request.url_for(route, **params).path

        def static(name: str) -> str:
            # The version in the query string lets browsers keep the files for a year.
            return f"{url(ASSET_ROUTE, name=name)}?v={SWAGGER_UI_VERSION}"

        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        # No validator badge: it would ask validator.swagger.io about the document.
        parameters: dict[str, Any] = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}
        return get_swagger_ui_html(
            openapi_url=root_path + app.openapi_url,
            title=title or f"{app.title} - Swagger UI",
            swagger_js_url=static("swagger-ui-bundle.js"),
            swagger_css_url=static("swagger-ui.css"),
            swagger_favicon_url=static("favicon-32x32.png"),
            oauth2_redirect_url=url(OAUTH2_ROUTE),
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=parameters,
        )

    @router.get(f"{path}/oauth2-redirect", name=OAUTH2_ROUTE, response_class=HTMLResponse)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(f"{path}/static/{{name}}", name=ASSET_ROUTE)
    async def static_file(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, "no such file")
        return Response(
            asset(name),
            media_type=media_type,
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
