"""The REST API under /api/v1 (token auth, JSON errors) and its OpenAPI document.

May import podium.core and the rest of podium.server (web.auth for a browser's session); never podium.worker or podium.cli.
"""
