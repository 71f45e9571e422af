"""The one compiled part: the spam filter's word keys in C (optional: without a C compiler and Python's
headers the build goes on, and keys.py computes the same keys in numpy, more slowly)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pochta.filters.spam._wordkeys",
            sources=["src/pochta/filters/spam/_wordkeys.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
