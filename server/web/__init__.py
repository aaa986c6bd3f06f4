"""HTML pages: public (home, challenge, leaderboard), sign-in and account, student and instructor views.

May import podium.core and the rest of podium.server; never podium.worker or podium.cli.
"""
