"""Shared page components (not pages: Streamlit lists only .py files directly under pages/)."""
