"""Trading signals: indicators, charts, analysts (LLM and rules), the Delta store, the service.

Signals are advice for a human; nothing in this package places orders.
"""

from v6core.signals.schema import (Action, AnalystInput, Confidence, SignalAnswer, SignalRecord,
                                   Status)
from v6core.signals.service import LastAnalysis, SignalService

__all__ = ["Action", "AnalystInput", "Confidence", "LastAnalysis", "SignalAnswer", "SignalRecord",
           "SignalService", "Status"]
