"""LTI 1.3 pieces shared by the web app and the worker: tables, the tool's keys, service calls, passback rows.

Part of the core: imports only podium.core.
"""
