"""v6core.sim: a TCP server speaking the TWS API socket protocol over a simulated market.

    from v6core.sim import SimGateway
    gw = SimGateway(seed=7); port = gw.start(); ...; gw.stop()
"""

from v6core.sim.account import SimPosition
from v6core.sim.gateway import SimGateway
from v6core.sim.orders import SimComboLeg, SimOrder

__all__ = ["SimGateway", "SimPosition", "SimOrder", "SimComboLeg"]
