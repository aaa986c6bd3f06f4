"""Podium web application (Flask); create_app lives in server.app."""


def create_app(settings=None):
    """Build the Flask app (see server.app.create_app)."""
    from server.app import create_app as _create_app
    return _create_app(settings)
