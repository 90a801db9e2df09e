"""stackctl: declarative namespace groups for Docker hosts."""

__version__ = "0.1.0"
