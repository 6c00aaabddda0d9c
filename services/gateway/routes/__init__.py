"""HTTP routes, one module per API style."""
