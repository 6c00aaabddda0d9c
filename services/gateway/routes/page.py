"""The browser page at ``/``: a presenter view (microphone -> live captions, translations and
spoken translation over ``/ws/converse``) and a listener view (captions over SSE).

Plain HTML/JS/CSS from ``services/gateway/static`` (no build step, nothing from a CDN: the
page must work offline). Only the files named in ``STATIC_FILES`` are served, so a request
path can never reach anything else on disk.
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from services.gateway.auth import require
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError, bus_guard
from services.gateway.stages.mt import pair_of

router = APIRouter(tags=["page"])
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES = {
    "app.js": "text/javascript",
    "capture.js": "text/javascript",
    "style.css": "text/css",
}
# The page is small and changes with the gateway: revalidate rather than serve a stale copy.
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The presenter/listener page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=NO_CACHE)


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """One of the page's scripts or style sheets."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise GatewayError(404, f"no static file {name[:64]!r}", "not_found")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=NO_CACHE)


@router.get(
    "/v1/live/options",
    summary="What the live page can offer: languages and voices",
    dependencies=[Depends(require("listener"))],
)
async def options(core: Annotated[Core, Depends(get_core)]) -> dict[str, Any]:
    """Source languages (STT), translation pairs (MT) and voices (TTS) of live workers."""
    with bus_guard():
        live = await core.registry.workers(fresh=True)
    sources = {lang for w in live if w.component == "stt" for lang in w.languages}
    pairs = {pair_of(w) for w in live if w.component == "mt"}
    voices = {w.model: w.languages for w in live if w.component == "tts" and w.model}
    return {
        "source_languages": sorted(sources),
        "pairs": sorted(pairs),
        "voices": [{"id": v, "languages": langs} for v, langs in sorted(voices.items())],
    }
