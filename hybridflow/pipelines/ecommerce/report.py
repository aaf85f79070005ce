"""The ecommerce pipeline's sections of ``hybridflow report ecommerce``: the
products by their busiest hour (products with alerts in red) and the sessions
by outcome."""

from __future__ import annotations

from collections import Counter, defaultdict

from hybridflow.monitoring.report import Section, _table, read_output, top_keys

__all__ = ["report_sections"]


def report_sections(directory: str) -> list[Section]:
    alerted = {a["key"] for a in read_output(directory, "alerts") if a["rule"] != "cart_abandoned"}
    sections = []
    peak: dict[str, float] = defaultdict(float)
    for row in read_output(directory, "demand"):
        peak[row["product_id"]] = max(peak[row["product_id"]], row["units"])
    if peak:
        sections.append(top_keys(dict(peak), alerted, "Products by their busiest hour", "units",
                                 "the most units of the product ordered in one clock hour"))
    sessions = read_output(directory, "sessions")
    if sessions:
        outcome = Counter(
            "ordered" if s["orders"] else "abandoned a cart" if s["carts"] and not s["checkouts"]
            else "checked out, no order" if s["checkouts"] else "browsed" for s in sessions
        )
        rows = [(name, n, f"{100.0 * n / len(sessions):.1f} %") for name, n in outcome.most_common()]
        sections.append(Section("Sessions by outcome", html=_table(["outcome", "sessions", "share"], rows),
                                caption=f"{len(sessions)} user sessions (session windows per user)."))
    return sections
