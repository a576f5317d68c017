"""deploysim: predict how a new LLM will behave once deployed, before it is released.

Logged conversations are ingested into one conversation model (:mod:`deploysim.schema`) and a
SQLite run store (:mod:`deploysim.store`), from which every later stage reads and writes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deploysim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
