"""The on-chain order check: was this service of this asset ordered and paid, by this signer?

It follows the reference Provider's ``validate_order`` (``provider-api.md``
section 2) with DESIGN's fixes: every event must come from the service's own
datatoken; the provider fee must be this Provider's, validly signed, for this
environment and not expired; ``reuseOrder`` is followed to its original
order; an unknown or pending transaction fails within a bounded wait.

One mined order costs one RPC call (its receipt; two for a reused order), and
nothing at all once its receipt is cached; the datatoken's binding to the
data NFT is read once per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from eth_utils.address import to_checksum_address

from ocean_provider.auth.addresses import ADDRESS
from ocean_provider.chain.events import events_from
from ocean_provider.chain.fees import ZERO_ADDRESS, ProviderData, ProviderFee, fee_amount
from ocean_provider.chain.reads import ChainReader, Receipt, ReceiptMissing, ReceiptUnconfirmed
from ocean_provider.compute.interfaces import Asset, VerifiedOrder
from ocean_provider.errors import ComputeRefused

log = logging.getLogger(__name__)

ONE_TOKEN = 10**18  # an order costs at least one datatoken
EXPIRY_GRACE = 90  # seconds; the reference's allowance on top of initialize-to-order delay


class ChainOrderVerifier:
    def __init__(
        self,
        reader: ChainReader,
        provider_addresses: Mapping[int, str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._providers = {c: to_checksum_address(a) for c, a in provider_addresses.items()}
        self._clock = clock

    def verify(
        self,
        *,
        asset: Asset,
        service_id: str,
        tx_id: str,
        consumer: str,
        environment: Mapping[str, Any] | None,
        resource: str,
        allow_expired_fee: bool = False,
    ) -> VerifiedOrder:
        def refuse(code: str) -> ComputeRefused:
            log.info("order %s for %s refused: %s", tx_id, asset.did, code)
            return ComputeRefused(f"{resource}.transferTxId", code)

        chain = asset.chain_id
        service, index = _service(asset, service_id)
        datatoken = _address(service.get("datatokenAddress"))
        nft = _address((asset.ddo.get("nft") or {}).get("address") or asset.ddo.get("nftAddress"))
        if datatoken is None or nft is None:
            raise ComputeRefused(f"{resource}.serviceId", "datatoken_unknown")
        if not self._reader.is_deployed(chain, nft, datatoken):
            raise refuse("datatoken_not_of_asset")

        fee_receipt = self._receipt(chain, tx_id, refuse)
        reused = _last(events_from(fee_receipt["logs"], "OrderReused", datatoken))
        order_receipt, order_tx = fee_receipt, tx_id
        if reused is not None:
            order_tx = "0x" + bytes(reused["orderTxId"]).hex()
            order_receipt = self._receipt(chain, order_tx, refuse)

        started = list(events_from(order_receipt["logs"], "OrderStarted", datatoken))
        if not started:  # an order of another token, or a look-alike contract's events
            raise refuse("order_wrong_datatoken")
        order = _last(e for e in started if int(e["serviceIndex"]) == index)
        if order is None:
            raise refuse("order_wrong_service")
        fee = self._fee(chain, fee_receipt, datatoken, service_id, refuse)
        data = ProviderData.decode(fee.data)
        assert data is not None  # _fee picks only fees with our providerData
        if environment is not None and data.environment != environment.get("id"):
            raise refuse("provider_fee_wrong_environment")
        if int(order["amount"]) < ONE_TOKEN:
            raise refuse("order_amount_too_low")
        if consumer not in (order["consumer"], order["payer"]):
            raise refuse("order_wrong_consumer")
        ordered_at = int(reused["timestamp"] if reused is not None else order["timestamp"])
        now = self._clock()
        timeout = _int(service.get("timeout"))
        if timeout and now - ordered_at > timeout:
            raise refuse("order_expired")
        expired = _fee_expired(fee.valid_until, data, ordered_at, now)
        if environment is not None and expired and not allow_expired_fee:
            raise refuse("provider_fee_expired")
        return VerifiedOrder(
            chain_id=chain,
            tx_id=tx_id,
            order_tx_id=order_tx,
            fee_token=fee.token,
            fee_amount=fee.amount,
            valid_until=fee.valid_until,
            consumer=str(order["consumer"]),
        )

    def check_fees(
        self, chain_id: int, orders: list[VerifiedOrder], environment: Mapping[str, Any]
    ) -> None:
        token = _address(environment.get("feeToken")) or ZERO_ADDRESS
        if token == ZERO_ADDRESS or not orders:
            return
        valid_until = max(order.valid_until for order in orders)
        seconds = valid_until - self._clock()
        decimals = self._reader.decimals(chain_id, token) if seconds > 0 else 0
        needed = fee_amount(environment.get("priceMin"), seconds, decimals)
        if needed == 0:
            return
        if not any(o.fee_token == token and o.fee_amount >= needed for o in orders):
            raise ComputeRefused("order", "fees_not_paid")

    def _receipt(self, chain: int, tx_id: str, refuse: Callable[[str], ComputeRefused]) -> Receipt:
        try:
            receipt = self._reader.receipt(chain, tx_id)
        except ReceiptMissing as missing:
            raise refuse("order_pending" if missing.pending else "order_not_found") from None
        except ReceiptUnconfirmed:
            raise refuse("order_not_confirmed") from None
        if receipt["status"] != 1:
            raise refuse("order_failed")
        return receipt

    def _fee(
        self,
        chain: int,
        receipt: Receipt,
        datatoken: str,
        service_id: str,
        refuse: Callable[[str], ComputeRefused],
    ) -> ProviderFee:
        """The last ``ProviderFee`` from the datatoken issued for this service, checked."""
        fee = None
        for event in events_from(receipt["logs"], "ProviderFee", datatoken):
            data = ProviderData.decode(bytes(event["providerData"]))
            if data is not None and data.names(datatoken, service_id):
                fee = ProviderFee(
                    address=event["providerFeeAddress"],
                    token=event["providerFeeToken"],
                    amount=int(event["providerFeeAmount"]),
                    v=int(event["v"]),
                    r=bytes(event["r"]),
                    s=bytes(event["s"]),
                    valid_until=int(event["validUntil"]),
                    data=bytes(event["providerData"]),
                )
        if fee is None:
            raise refuse("provider_fee_missing")
        provider = self._providers.get(chain)
        if fee.address != provider:
            raise refuse("provider_fee_wrong_provider")
        if fee.signer() != provider:
            raise refuse("provider_fee_invalid_signature")
        return fee


def _service(asset: Asset, service_id: str) -> tuple[Mapping[str, Any], int]:
    """The service and its position in the DDO's ``services`` (what orders name)."""
    for index, service in enumerate(asset.ddo.get("services") or []):
        if isinstance(service, Mapping) and service.get("id") == service_id:
            return service, index
    raise ComputeRefused("serviceId", "not_found")


def _fee_expired(valid_until: int, data: ProviderData, ordered_at: int, now: float) -> bool:
    """The reference's rule: past ``validUntil`` by more than the initialize-to-order delay
    plus 90 s. A fee that says nothing of when it was issued gets no grace."""
    if valid_until <= 0 or now < valid_until:
        return False
    grace = ordered_at - data.timestamp + EXPIRY_GRACE if data.timestamp > 0 else 0
    return now >= valid_until + max(grace, 0)


def _address(value: object) -> str | None:
    if isinstance(value, str) and ADDRESS.fullmatch(value):
        return to_checksum_address(value)
    return None


def _int(value: object) -> int:
    try:
        return int(str(value)) if value is not None and not isinstance(value, bool) else 0
    except ValueError:
        return 0


def _last(items: Any) -> Any:
    last = None
    for item in items:
        last = item
    return last
