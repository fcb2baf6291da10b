"""``POST /fileinfo`` and ``GET /download``: parse, authenticate, one consume call.

pod-configuration (Ocean's Kubernetes engine) calls both for each input, as the
environment's operator; ``fileinfo`` is unsigned there, as in the reference.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ocean_provider.api.context import context
from ocean_provider.api.downloads import download_response, requested_range
from ocean_provider.auth.messages import download_message
from ocean_provider.consume.requests import DownloadRequest, FileInfoRequest
from ocean_provider.web.params import refuse_head, request_params
from ocean_provider.wire.fields import parse

bp = Blueprint("consume", __name__)


@bp.post("/fileinfo")
def fileinfo() -> Response:
    req = parse(FileInfoRequest, request_params())
    return jsonify(context().consume.fileinfo(req))


@bp.get("/download")
def download() -> Response:
    refuse_head()
    byte_range = requested_range(request.headers.get("Range"))  # before a nonce is spent
    req = parse(DownloadRequest, request_params())
    message = download_message(req.document_id)
    signer = context().auth.authenticate(req.consumer_address, message, req.signature, req.nonce)
    stream = context().consume.download(signer, req, byte_range)
    response = download_response(stream, f"file-{req.file_index}")
    response.call_on_close(stream.close)  # also when the client leaves before the body
    return response
