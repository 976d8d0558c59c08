"""Shared page components (not pages: Streamlit lists only files directly under `pages/`)."""
