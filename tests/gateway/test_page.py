"""The browser page in real headless Chromium: the fake microphone plays the lecture clip, the
presenter view shows its captions and translation, a listener page shows them over SSE, and
both show who speaks (the lecture's voice, enrolled as a person, gets its card and label).

Debian ``chromium`` driven by Playwright's Python package (never ``playwright install``).
"""

import wave
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from services.gateway.settings import GatewaySettings
from services.mt.__main__ import loops as mt_loops
from services.mt.model import load_model as load_mt
from services.mt.settings import MtSettings
from services.speaker.__main__ import worker_spec as speaker_spec
from services.speaker.model import load_model as load_speaker
from services.speaker.settings import SpeakerSettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from shared.textnorm import normalize
from tests.apps import running_app, running_workers
from tests.audio import DATA, read_pcm
from tests.gateway.live_helpers import listening
from tests.polling import eventually

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian 'chromium' is not installed (/usr/bin/chromium)"
    ),
]
CAPTION_WAIT_S = 60  # the fake microphone loops the ~16 s clip: a caption is due well before


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    """The lecture between pauses, as the WAV Chromium plays as its microphone (in a loop)."""
    pcm, fmt = read_pcm("en_lecture")
    pause = bytes(fmt.sample_width_bytes * fmt.sample_rate_hz)  # a second of silence
    path = tmp_path / "microphone.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.sample_width_bytes)
        wav.setframerate(fmt.sample_rate_hz)
        wav.writeframes(pause + pcm + 2 * pause)
    return path


@pytest.fixture
async def address(clean_redis: str) -> AsyncIterator[str]:
    """A real gateway (lifespan included) behind uvicorn, with real STT, MT and speaker
    workers."""
    settings = GatewaySettings(redis_url=clean_redis, request_timeout_s=30, registry_cache_s=0)
    model: SttModel = load_stt(SttSettings())
    stt = stt_spec(model, SttSettings())
    mt_settings = MtSettings(redis_url=clean_redis, pairs=["en-pt"], block_ms=50)
    loops = [
        (stt, SttSettings(redis_url=clean_redis, worker_name="stt-a", block_ms=50)),
        *mt_loops(load_mt(mt_settings), mt_settings),
        (
            speaker_spec(load_speaker(SpeakerSettings()), SpeakerSettings()),
            SpeakerSettings(redis_url=clean_redis, block_ms=50),
        ),
    ]
    async with (
        running_workers(clean_redis, loops),
        running_app(settings) as app,
        listening(app) as host,
    ):
        yield host


@pytest.fixture
async def browser(microphone: Path) -> AsyncIterator[Browser]:
    """Headless Debian Chromium whose microphone plays ``microphone``."""
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            await chromium.close()


def said(phrase: str) -> Callable[[str], bool]:
    """True for a text containing ``phrase``, after normalising both (case, punctuation)."""
    wanted = " ".join(normalize(phrase))
    return lambda text: wanted in " ".join(normalize(text))


async def shows(page: Page, selector: str, check: Callable[[str], bool]) -> bool:
    """Whether the text of ``selector`` on ``page`` passes ``check``."""
    return check(await page.inner_text(selector))


@pytest.mark.model
@pytest.mark.timeout(150)
@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_presenter_and_listener_pages_show_live_captions(
    address: str, browser: Browser, transport: str
) -> None:
    errors: list[str] = []
    presenter = await browser.new_page()
    presenter.on("pageerror", lambda exc: errors.append(str(exc)))
    sockets: list[str] = []
    offers: list[str] = []
    presenter.on("websocket", lambda ws: sockets.append(ws.url))
    presenter.on("request", lambda r: offers.append(r.url) if r.url.endswith("/offer") else None)
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as http:
        lecture = ("file", ("lecture.wav", (DATA / "en_lecture.wav").read_bytes()))
        about = {"name": "Ada", "description": "teaches the course", "relationship": "lecturer"}
        enrolled = await http.post("/v1/speakers", files=[lecture], data=about)
        assert enrolled.status_code == 201, enrolled.text
    await presenter.goto(f"http://{address}/")
    # The translation pair the MT worker serves is offered; choose it and start.
    await presenter.get_by_label("Portuguese (pt)").check()
    if transport == "webrtc":
        await presenter.get_by_text("More").click()
        await presenter.get_by_label("Send the microphone over WebRTC").check()
    await presenter.get_by_role("button", name="Start presenting").click()
    await presenter.locator("#session-box").wait_for(state="visible", timeout=15_000)
    session_id = await presenter.locator("#session-id").inner_text()
    assert session_id

    listener = await browser.new_page()
    listener.on("pageerror", lambda exc: errors.append(str(exc)))
    await listener.goto(f"http://{address}/#listen={session_id}")
    await listener.get_by_role("button", name="Join").click()
    await eventually(partial(shows, listener, "#listener-status", said("listening")), 15)

    distributed = said("the course on distributed systems")
    await eventually(partial(shows, presenter, "#captions .final", distributed), CAPTION_WAIT_S)
    portuguese = said("sistemas distribuídos")
    await eventually(partial(shows, presenter, "#translation-pt", portuguese), CAPTION_WAIT_S)
    await eventually(partial(shows, listener, "#listen-captions", distributed), CAPTION_WAIT_S)
    # Who speaks: the enrolled person's card and the name before the captions, on both pages.
    for page, captions in ((presenter, "#captions"), (listener, "#listen-captions")):
        card = partial(shows, page, f"{captions} .person", said("Ada lecturer"))
        await eventually(card, CAPTION_WAIT_S)
        await eventually(partial(shows, page, f"{captions} .final .speaker", said("Ada")), 10)
    assert "error" not in (await presenter.get_attribute("#presenter-status", "class") or "")

    # Stopping finishes the transcript, which the session keeps.
    await presenter.get_by_role("button", name="Stop").click()
    await eventually(partial(shows, presenter, "#presenter-status", said("stopped")), 30)
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        transcript = (await http.get(f"/v1/sessions/{session_id}/transcript")).text
    assert distributed(transcript), transcript
    assert not errors, errors
    # The audio went the chosen way.
    assert (len(offers), len(sockets)) == ((1, 0) if transport == "webrtc" else (0, 1))


async def test_page_and_its_files_are_served(clean_redis: str) -> None:
    settings = GatewaySettings(redis_url=clean_redis, registry_cache_s=0)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http,
    ):
        page = await http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for name in ("app.js", "capture.js", "style.css"):
            assert (await http.get(f"/static/{name}")).status_code == 200, name
        for name in ("index.html", "..%2Fapp.py", "nope.js"):
            missing = await http.get(f"/static/{name}")
            assert missing.status_code == 404 and missing.json()["detail"], name
        options = (await http.get("/v1/live/options")).json()
    assert options == {"source_languages": [], "pairs": [], "voices": []}
