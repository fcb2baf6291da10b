"""The message each signed endpoint signs (before ``+ nonce``), as ``DESIGN.md`` fixes them."""

from __future__ import annotations


def start_message(consumer: str, document_id: str) -> str:
    """POST /compute: consumerAddress + dataset.documentId."""
    return f"{consumer}{document_id}"


def job_message(consumer: str, job_id: str | None, document_id: str | None) -> str:
    """GET/PUT/DELETE /compute: consumerAddress + jobId + documentId (missing parts empty)."""
    return f"{consumer}{job_id or ''}{document_id or ''}"


def result_message(consumer: str, job_id: str, index: int) -> str:
    """GET /computeResult: consumerAddress + jobId + index."""
    return f"{consumer}{job_id}{index}"


def download_message(document_id: str) -> str:
    """GET /download: documentId (pod-configuration signs ``did + nonce`` with the operator key)."""
    return document_id


def decrypt_message(
    decrypter: str, chain_id: int, transaction_id: str | None, data_nft: str
) -> str:
    """POST /decrypt: (transactionId, else dataNftAddress) + decrypterAddress + chainId.

    As the reference's ``validate_decrypt_signature`` builds it and Aquarius signs it
    (``f"{txid}{address}{chain_id}{nonce}"``); each part as the client sent it.
    """
    return f"{transaction_id or data_nft}{decrypter}{chain_id}"
