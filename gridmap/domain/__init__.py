"""Rules and vocabulary of grid governance, with no I/O."""
