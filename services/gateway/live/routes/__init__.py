"""Every live-session route, for one ``include_router`` in the app factory."""

from fastapi import APIRouter

from services.gateway.live.routes import sessions, sse, webrtc, ws

router = APIRouter()
router.include_router(ws.router)
router.include_router(sessions.router)
router.include_router(sse.router)
router.include_router(webrtc.router)
