"""v6 operator dashboard (placeholder shell until the pages land)."""

import streamlit as st

st.set_page_config(page_title="v6", layout="wide")
st.title("v6 operator dashboard")
st.info("Starting up: pages arrive with the dashboard issue.")
