"""The iot pipeline's sections of ``hybridflow report iot``: the machines with
the hottest and the most vibrating windows (machines with alerts in red), and
the maintenance jobs launched."""

from __future__ import annotations

from collections import Counter, defaultdict

from hybridflow.monitoring.report import Section, _table, read_output, top_keys

__all__ = ["report_sections"]


def report_sections(directory: str) -> list[Section]:
    alerted = {a["key"] for a in read_output(directory, "alerts")}
    aggregates = read_output(directory, "aggregates")
    sections = []
    for sensor, unit in (("temperature", "°C"), ("vibration", "mm/s")):
        peak: dict[str, float] = defaultdict(lambda: float("-inf"))
        for row in aggregates:
            if row.get(f"{sensor}_max") is not None:
                peak[row["machine_id"]] = max(peak[row["machine_id"]], row[f"{sensor}_max"])
        if peak:
            sections.append(top_keys(dict(peak), alerted, f"Machines by peak {sensor}", f"{sensor} ({unit})",
                                     "the highest reading of any window"))
    launches = read_output(directory, "launches")
    if launches:
        per = Counter((row["rule"], row["status"]) for row in launches)
        rows = [(rule, status, n) for (rule, status), n in sorted(per.items())]
        sections.append(Section("Maintenance launches", html=_table(["rule", "status", "launches"], rows),
                                caption=f"{len(launches)} maintenance jobs launched (one per rule and window, "
                                "then a cooldown per rule); each is a line of launches.jsonl."))
    return sections
