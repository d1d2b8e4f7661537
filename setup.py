"""Package discovery that cannot forget a folder: every package under the mapped
top-level folders becomes `automem.<folder>.<...>`, for the wheel and the sdist alike."""

from setuptools import find_namespace_packages, setup

ROOTS = ("engine", "schemas", "consumers", "bench")

setup(
    package_dir={f"automem.{root}": root for root in ROOTS},
    packages=[f"automem.{root}{'.' + sub if sub else ''}" for root in ROOTS
              for sub in ["", *find_namespace_packages(root, exclude=["*__pycache__*"])]],
)
