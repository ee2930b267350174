"""The API docs page: Swagger UI at `/docs`, reading `/openapi.yaml`.

Swagger UI's files come from the `swagger-ui-py` package (Swagger UI 5, which renders OpenAPI
3.1; no CDN, nothing built here); only the two the page needs are served, with the page's
own start-up script from `docs_page/`. The page runs under a policy that allows scripts, styles
and fetches from this origin only (no inline script: the start-up script is a file).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui.utils import SWAGGER_UI_PY_ROOT

from ..errors import NotFound

PAGE_DIR = Path(__file__).with_name("docs_page")
SWAGGER_DIR = Path(SWAGGER_UI_PY_ROOT) / "static"
# `/docs/{asset}` → (file, content type); the spec's enum lists the same names
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER_DIR / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_DIR / "swagger-ui-bundle.js", "text/javascript"),
    "docs.js": (PAGE_DIR / "docs.js", "text/javascript"),
}
# Swagger UI draws its icons as data: images and sets element styles from script (CSSOM,
# which `style-src 'self'` allows); everything else comes from this origin.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'none'")


def _file(path: Path, content_type: str, cache: str) -> web.FileResponse:
    return web.FileResponse(path, headers={
        "Content-Type": f"{content_type}; charset=utf-8", "Content-Security-Policy": POLICY,
        "Cache-Control": cache})


async def docs_page(request: web.Request) -> web.FileResponse:
    """GET /docs: Swagger UI over /openapi.yaml."""
    return _file(PAGE_DIR / "index.html", "text/html", "no-cache")


async def docs_asset(request: web.Request) -> web.FileResponse:
    """GET /docs/{asset}: Swagger UI's script and style sheet, and the page's start-up."""
    found = ASSETS.get(request.match_info["asset"])
    if found is None:
        raise NotFound("the docs page has no such file")
    return _file(*found, "public, max-age=3600")
