"""Flask plumbing both apps (the Provider and the engine) use: where request parameters come
from, the JSON error replies, the JSON provider with a nesting bound, each request's id and
log line (``request_log``, ``log_format``) and ``/metrics`` (``metrics``, ``metrics_dir``)."""
