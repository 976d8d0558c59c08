"""Option structures: chains as values, strategy templates, payoff analysis, rolls, and the
ticket's risk against the portfolio. Pure; the runtime feeds it chains, pages show it."""

from v6core.structures.chain import OptionQuote, ChainSlice, StructureError, strikes_around
from v6core.structures.payoff import PayoffSummary, analyse
from v6core.structures.roll import ROLL_MODES, RollPlan, draft_roll, held_quotes, quote_from_leg
from v6core.structures.templates import (
    TEMPLATES, Structure, StructureLeg, TemplateSpec, build, combine, single_leg,
)
from v6core.structures.ticket_risk import (
    TicketRisk, order_structure, order_ticket_risk, structure_legs, ticket_risk,
)

__all__ = [
    "ChainSlice", "OptionQuote", "PayoffSummary", "ROLL_MODES", "RollPlan", "Structure",
    "StructureError", "StructureLeg", "TEMPLATES", "TemplateSpec", "TicketRisk", "analyse", "build",
    "combine", "draft_roll", "held_quotes", "quote_from_leg", "single_leg", "strikes_around", "structure_legs",
    "ticket_risk", "order_structure", "order_ticket_risk",
]
