"""gridmap: grid-based community governance on PostGIS."""

__version__ = "0.1.0"
