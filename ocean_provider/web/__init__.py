"""Flask plumbing both apps (the Provider and the engine) use: where request parameters come
from, the JSON error replies, and the JSON provider with a nesting bound."""
