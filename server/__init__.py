"""podium.server: the web application (Flask): pages in web/, the REST API in api/, beside the domain modules they
share (leaderboard, submissions, courses, exports...). create_app lives in podium.server.app.

May import podium.core only; never podium.worker or podium.cli.
"""
