"""v6core: the IB runtime, state, Greeks, Delta history, signals and orders behind the v6 dashboard."""

__version__ = "0.1.0"
