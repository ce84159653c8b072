"""dualbench: benchmark universal ML interatomic potentials against DFT and EXAFS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dualbench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
