"""podium.challenges: the bundled challenges and the scripts that build their data and starter kits.

May import podium.core only.
"""
