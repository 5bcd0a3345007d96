from setuptools import find_packages, setup

requires = [
    "pyramid>=2.0",
    "waitress>=3.0",
    "sqlalchemy>=2.1",
    "alembic>=1.13",
    "pyramid_jinja2>=2.10",
    "boto3>=1.34",
    "urllib3>=2",
    "pymemcache>=4.0",
    "psycopg[binary]>=3.1",
    "argon2-cffi>=23.1",
    "prometheus-client>=0.20",
    "cachetools>=5.3",
    # POST /upload/ (SPEC §9 "Intake"): a streaming multipart parser driven by callbacks, so the body goes
    # to a temporary file chunk by chunk and never whole into memory (the parser Starlette uses).
    "python-multipart>=0.0.18",
]

tests_require = [
    "pytest>=8",
    "webtest>=3",
    "moto[server]>=5",
    "requests>=2.31",
    "playwright>=1.40",
    "ruff>=0.6",
    "hypothesis>=6.100",
]

setup(
    name="tecken-pyramid",
    version="0.1.0",
    description="A symbol server for crash tooling (the download half of Mozilla's Tecken) on Pyramid",
    packages=find_packages(exclude=["tests", "tests.*", "bench"]),
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=requires,
    extras_require={"testing": tests_require},
    entry_points={
        "paste.app_factory": ["main = tecken_pyramid:main"],
        "paste.server_runner": ["main = tecken_pyramid.server:serve"],
        "console_scripts": ["tecken-pyramid = tecken_pyramid.cli:main"],
    },
)
