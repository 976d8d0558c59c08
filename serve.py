"""The server entry point: `streamlit run serve.py` serves app.py, plus the live feed's endpoint.

`st.App` is Streamlit's own ASGI app; `streamlit run` finds it here and runs app.py as the main
script with the same config (.streamlit/). The one route added, `/v6/live/{part}`, answers the
pages' live feeds (`pages/components/live_feed.py`) from the shared per-snapshot bodies, so an
open tab's refresh costs the server one small request instead of a script run.
"""

import streamlit as st
from starlette.routing import Route

from pages.components.live_feed import ROUTE, endpoint

app = st.App("app.py", routes=[Route(ROUTE, endpoint, methods=["GET"])])
