"""The fraud pipeline's sections of ``hybridflow report fraud``: the top cards
by spend (cards with alerts in red) and the window aggregates (spend and
busiest card per window, transactions per card and window)."""

from __future__ import annotations

from collections import defaultdict

from hybridflow.monitoring.report import Section, read_output, top_keys, window_aggregates

__all__ = ["report_sections"]


def report_sections(directory: str) -> list[Section]:
    alerted = {a["key"] for a in read_output(directory, "alerts")}
    profiles = read_output(directory, "profiles")
    aggregates = read_output(directory, "aggregates", ("window_start", "window_end"))
    sections = []
    if profiles:
        spend = {p["card_id"]: p["txn_count"] * p["amount_mean"] for p in profiles}
        sections.append(top_keys(spend, alerted, "Top cards by spend", "spend",
                                 "total over the history, from the card profiles"))
    elif aggregates:
        peak: dict[str, float] = defaultdict(float)
        for row in aggregates:
            peak[row["card_id"]] = max(peak[row["card_id"]], row["total_amount"] or 0.0)
        sections.append(top_keys(peak, alerted, "Top cards by spend", "spend", "the most in one window"))
    if aggregates:
        sections.append(window_aggregates(aggregates, "card_id", "txn_count", "total_amount"))
    return sections
