"""The supply_chain pipeline's sections of ``hybridflow report supply_chain``:
the shipments by their largest projected delay and the item-locations by
their smallest cover (available stock against the demand over the horizon),
those with alerts in red."""

from __future__ import annotations

from collections import defaultdict

from hybridflow.monitoring.report import Section, read_output, top_keys

__all__ = ["report_sections"]


def report_sections(directory: str) -> list[Section]:
    alerted = {a["key"] for a in read_output(directory, "alerts")}
    sections = []
    delay: dict[str, float] = defaultdict(lambda: float("-inf"))
    for row in read_output(directory, "shipments"):
        if row.get("delay_minutes") is not None:
            delay[row["shipment_id"]] = max(delay[row["shipment_id"]], row["delay_minutes"])
    if delay:
        sections.append(top_keys(dict(delay), alerted, "Shipments by projected delay", "delay (minutes)",
                                 "the latest projected arrival against the planned ETA, of any window"))
    shortfall: dict[str, float] = defaultdict(lambda: float("-inf"))
    for row in read_output(directory, "stock_risk"):
        if row.get("available") is not None and row.get("horizon_demand") is not None:
            gap = row["horizon_demand"] - row["available"]
            shortfall[row["location_sku"]] = max(shortfall[row["location_sku"]], gap)
    if shortfall:
        sections.append(top_keys(dict(shortfall), alerted, "Item-locations by stock shortfall",
                                 "shortfall (units)", "demand over the horizon minus stock on hand and inbound "
                                 "in time, at its worst window (above 0: a stock-out risk)"))
    return sections
