# GPAW build configuration for `pip install gpaw` (GPAW_CONFIG=envs/gpaw-siteconfig.py),
# against Debian's libxc-dev, libopenblas-dev and libfftw3-dev; serial (no MPI).
# GPAW 26.7 compiles its C sources as C++: name the C++ compiler, since Python's
# default `gcc` would compile the .c files as C and fail on <algorithm>.
compiler = "g++"  # noqa: F821 - names below are GPAW's setup.py globals
fftw = True  # FFTW instead of numpy's FFT: about 1.3x faster plane-wave SCF
libraries += ["fftw3", "blas"]  # noqa: F821 - blas is OpenBLAS via Debian's alternatives
