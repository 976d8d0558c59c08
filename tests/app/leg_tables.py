"""Reading the strategy tables Positions draws as HTML (pages/components/leg_table.py) back into
rows, as a test sees them: each cell's shown text and its classes (gain/loss colour)."""

from __future__ import annotations

import json
from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[dict[str, tuple[str, str]]]] = []
        self._headers: list[str] = []
        self._cell: dict[str, str] | None = None
        self._row: dict[str, tuple[str, str]] | None = None
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row = {}
        elif tag == "td":
            self._cell = {"column": attrs.get("data-column", ""), "class": attrs.get("class", ""), "text": ""}
        elif tag == "th":
            self._in_th = True

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row[self._cell["column"]] = (self._cell["text"], self._cell["class"])
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "th":
            self._in_th = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def leg_tables(at) -> list[list[dict[str, tuple[str, str]]]]:
    """Every HTML leg table on the page: rows of {column: (shown text, css classes)}."""
    parser = _Tables()
    for element in at.markdown:
        if 'class="v6-legs"' in str(element.value):
            parser.feed(str(element.value))
    parser.feed(feed_html(at))
    return parser.tables


def column(table, name: str) -> list[str]:
    return [row[name][0] for row in table]


def feeds(at) -> dict[str, dict]:
    """The live feeds on the page (pages/components/live_feed.py): {key: the data drawn with it}."""
    out: dict[str, dict] = {}

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) == "bidi_component":
                proto = child.proto
                if proto.component_name == "v6_live_feed":
                    out[proto.id.rsplit("-", 1)[-1]] = json.loads(proto.json) if proto.json else {}
            walk(child)

    walk(at._tree)
    return out


def feed_html(at) -> str:
    """The HTML every live feed on the page shows first (before the browser refreshes it)."""
    return "".join(data.get("html", "") for data in feeds(at).values())


class _Summaries(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "summary":
            self._in = True
            self.labels.append("")

    def handle_endtag(self, tag):
        if tag == "summary":
            self._in = False

    def handle_data(self, data):
        if self._in:
            self.labels[-1] += data


def strategy_labels(at) -> list[str]:
    """The summary line of each strategy Positions lists (its live feed's <details>), as shown."""
    parser = _Summaries()
    parser.feed(feed_html(at))
    return parser.labels
