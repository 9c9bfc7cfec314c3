"""Media helpers: the supported-files table, Pillow (images) and PyAV (audio) conversions, and the
one option parser for media commands. Pure functions over bytes; no OpenAI, no platform."""
