"""The package's version, in one place: the package, the CLI, the report and the wheel read it."""
__version__ = "0.1.0"
