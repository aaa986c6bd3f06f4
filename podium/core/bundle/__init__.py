"""Challenge bundles: spec (challenge.toml), data (arrays and the bundle folder), archive (npz and zips).

Imports only podium.core; import the names from the three modules.
"""
