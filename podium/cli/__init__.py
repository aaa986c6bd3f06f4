"""The `podium` command line: admin verbs, the demo, the HTTP client for student verbs, and process launchers.

The top layer: may import podium.core, podium.server, podium.worker and podium.challenges.
"""
