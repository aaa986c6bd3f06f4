"""The bundled spoken-commands keyword-spotting challenge (synthesised with espeak-ng). May import podium.core only."""
