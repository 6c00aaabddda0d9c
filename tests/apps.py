"""The gateway app as tests run it: built over a settings object with a fresh metrics
registry, its lifespan (bridge, monitor, readers) started and stopped around the test."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


@asynccontextmanager
async def running_app(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    """A started gateway app over ``settings``; stopped on exit."""
    app = create_app(settings, CollectorRegistry())
    async with app.router.lifespan_context(app):
        yield app
