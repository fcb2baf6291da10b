"""The local stack for development, tests, benchmarks and the demo; production code never
imports it."""
