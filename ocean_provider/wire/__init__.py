"""What the Provider and its engine both speak: the Operator-Service job models, the request
signature between them, and the field types both sides validate requests with.

Shared by both services, so it imports neither: no Flask, no views, no services.
"""
