"""Assets: DDOs (on chain or from Aquarius), ECIES to the provider key, service files."""
