"""The core: settings, database and models, the submission state machine, storage, queue names, challenge bundles,
metrics, features and the static model checks.

May import only the standard library and third-party packages, never podium.server, podium.worker or podium.cli.
"""
