"""The packaged data files of the domain rules (read with importlib.resources)."""
