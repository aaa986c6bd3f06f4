"""HTML pages: public (home, challenge, leaderboard), sign-in and account, student and instructor views."""
