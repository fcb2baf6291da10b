"""SSRF-safe downloads of URLs that come from DDOs, shared by the Provider and the engine."""
