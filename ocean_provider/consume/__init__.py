"""Consuming a service's files: ``POST /fileinfo`` and ``GET /download``.

Ocean's Kubernetes engine (pod-configuration) fetches a job's inputs here as the compute
environment's operator (its ``consumerAddress``); a consumer of an ``access`` service
downloads its files here as the reference Provider serves them.
"""
