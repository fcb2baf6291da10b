from pathlib import Path

from setuptools import find_packages, setup


def requirements(name: str) -> list[str]:
    lines = Path(__file__).with_name(name).read_text().splitlines()
    return [line for line in lines if line and not line.startswith(("#", "-r"))]


setup(
    name="ocean-provider",
    version="0.1.0",
    description="Ocean Protocol Compute-to-Data Provider with a local sandboxed compute engine",
    python_requires=">=3.11",
    packages=find_packages(include=["ocean_provider", "ocean_provider.*"]),
    install_requires=requirements("requirements.txt"),
    extras_require={"dev": requirements("requirements-dev.txt")},
    entry_points={"console_scripts": ["ocean-provider=ocean_provider.cli:main"]},
)
