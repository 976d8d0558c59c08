"""Server versions the simulator speaks, and the version gates inside that range.

A session negotiates min(client's highest, SERVER_VERSION); every message whose layout changed
between MIN_CLIENT_VERSION and SERVER_VERSION is built (and every request parsed) by the
negotiated version. The names and numbers are IB's (ibapi/server_versions.py).
"""

from __future__ import annotations

SERVER_VERSION = 178          # MIN_SERVER_VER_PENDING_PRICE_REVISION
MIN_CLIENT_VERSION = 157      # MIN_SERVER_VER_REPLACE_FA_END; ib_async 2.1 offers 157..178

DURATION = 158                # OPEN_ORDER: duration
POST_TO_ATS = 160             # OPEN_ORDER: postToAts
AUTO_CANCEL_PARENT = 162      # OPEN_ORDER: autoCancelParent
FRACTIONAL_SIZE_SUPPORT = 163  # CONTRACT_DATA: sizeMinTick (163 only)
SIZE_RULES = 164              # CONTRACT_DATA: no version field, no mdSizeMultiplier; minSize, sizeIncrement...
ADVANCED_ORDER_REJECT = 166   # ERR_MSG: advancedOrderRejectJson
PEGBEST_PEGMID_OFFSETS = 170  # OPEN_ORDER / COMPLETED_ORDER: minTradeQty .. midOffsetAtHalf
FA_PROFILE_DESUPPORT = 177    # OPEN_ORDER / COMPLETED_ORDER / placeOrder: no faProfile field
PENDING_PRICE_REVISION = 178  # EXECUTION_DATA: pendingPriceRevision

UNSUPPORTED_VERSION = (506, "Unsupported version")
