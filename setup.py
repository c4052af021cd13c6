"""The one compiled part of ptmc: the exact store's index (src/ptmc/explore/_identity.pyx).

Built by ``pip install`` (Cython is a build requirement; setup.sh installs a C compiler when
there is none). Should the build fail, ptmc installs anyway and the exact store runs on a
Python dict, about half as fast; ``tests/test_store.py`` fails then, so CI cannot miss it.
"""
from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython: the pure-Python store
    extensions = []
else:
    extensions = cythonize([Extension("ptmc.explore._identity", ["src/ptmc/explore/_identity.pyx"],
                                      optional=True)], compiler_directives={"language_level": "3"})

setup(ext_modules=extensions)
