"""The compiled parts: the spam filter's word keys and table lookups in C (optional: without a C compiler and
Python's headers the build goes on, and keys.py and table.py do the same in numpy, more slowly)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(f"pochta.filters.spam.{name}", sources=[f"src/pochta/filters/spam/{name}.c"], optional=True)
        for name in ("_wordkeys", "_tables")
    ]
)
