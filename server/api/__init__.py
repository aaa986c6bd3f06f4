"""The REST API under /api/v1 (token auth, JSON errors) and its OpenAPI document."""
