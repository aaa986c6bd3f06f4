"""kombu's SQLAlchemy transport with a short polling interval (the embedded default broker).

The stock transport hands every transport option to create_engine, so its polling interval
cannot be tuned through broker_transport_options; this subclass sets it on the class instead.
"""
from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as _Channel
from kombu.transport.sqlalchemy import Transport as _Transport

ALIAS = "podiumsqla"


class Channel(_Channel):
    """Channel whose engine gets SQLite-friendly options."""


class Transport(_Transport):
    """SQLAlchemy transport polling every 0.02 s instead of every second."""

    Channel = Channel
    polling_interval = 0.02


def register(polling_interval: float) -> str:
    """Register the transport under an alias and return the URL scheme prefix to use."""
    Transport.polling_interval = polling_interval
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
    return ALIAS
