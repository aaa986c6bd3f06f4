"""LTI 1.3 on the web side: launch validation and sign-in, tool registration, frame origins, grade passback from the pages.

May import podium.core and the rest of podium.server; never podium.worker or podium.cli.
"""
