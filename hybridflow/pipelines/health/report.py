"""The health pipeline's sections of ``hybridflow report health``: the
patients with the highest window early-warning scores (patients with alerts
in red) and the alerts per rule. Patients appear by their pseudonymous
``patient_id`` only: the outputs hold no identifying data."""

from __future__ import annotations

from collections import Counter, defaultdict

from hybridflow.monitoring.report import Section, _table, read_output, top_keys

__all__ = ["report_sections"]


def report_sections(directory: str) -> list[Section]:
    alerts = read_output(directory, "alerts")
    alerted = {a["key"] for a in alerts}
    peak: dict[str, float] = defaultdict(lambda: float("-inf"))
    for row in read_output(directory, "aggregates"):
        if row.get("ews_mean") is not None:
            peak[row["patient_id"]] = max(peak[row["patient_id"]], row["ews_mean"])
    sections = []
    if peak:
        sections.append(top_keys(dict(peak), alerted, "Patients by peak early-warning score", "mean score",
                                 "the highest mean early-warning score of any window (NEWS2, 5 = urgent response)"))
    if alerts:
        per = Counter(a["rule"] for a in alerts)
        sections.append(Section("Alerts per rule", html=_table(["rule", "alerts"], sorted(per.items())),
                                caption=f"{len(alerts)} alerts for {len(alerted)} patients."))
    return sections
