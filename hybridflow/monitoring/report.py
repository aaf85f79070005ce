"""The HTML report of a batch run: ``hybridflow report PIPELINE --input DIR --out report.html``.

It reads the outputs a run published under its ``--output`` directory (JSON
lines or Parquet, local or any Beam filesystem): exactly the files its
``_SUCCESS`` lists (:mod:`hybridflow.pipelines.outputs`), so a directory of a
run that is still going, failed or was interrupted is refused. It plots them with matplotlib and
writes one self-contained HTML file: the plots are inline SVG, the styles
inline, there are no scripts and nothing is fetched when it is opened. When
the run wrote ``--metrics_json`` (by default looked for as
``<input>/metrics.json``) the report starts with the job summary.

Every pipeline's report has the same frame (:func:`pipeline_report`): the
job, alerts over time by rule, then the pipeline's own sections
(``PipelineSpec.report``: ``fraud`` shows the top cards by spend and its
window aggregates), then counts (alerts by rule, dead letters by reason,
late records, rows of each output) and the latest alerts. The figure helpers
(:func:`alerts_over_time`, :func:`top_keys`, :func:`window_aggregates`) are
for a pipeline's own sections.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import io
import json
import posixpath
from collections import Counter, defaultdict
from typing import Any, Iterable, Optional

from hybridflow.errors import UsageError, require

__all__ = [
    "Report", "Section", "pipeline_report", "render_report", "write_report", "read_output", "alerts_over_time",
    "top_keys", "window_aggregates",
]

_FEATURE = "hybridflow report"


@dataclasses.dataclass
class Section:
    """One part of a report: a heading, then a figure (SVG markup) and/or HTML."""

    title: str
    svg: str = ""
    html: str = ""
    caption: str = ""


@dataclasses.dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]


# --------------------------------------------------------------------------
# Reading outputs


def _parse_time(value: Any) -> Optional[datetime.datetime]:
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value / 1e6, datetime.timezone.utc)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def read_output(directory: str, name: str, time_fields: Iterable[str] = ()) -> list[dict]:
    """Rows of output ``name`` of the run published in ``directory`` (the
    ``.jsonl`` and ``.parquet`` files its ``_SUCCESS`` lists) with
    ``time_fields`` as datetimes."""
    from apache_beam.io.filesystems import FileSystems

    from hybridflow.pipelines.outputs import published_files

    rows: list[dict] = []
    for path in published_files(directory, name):
        if not path.endswith((".jsonl", ".parquet")):
            continue
        with FileSystems.open(path) as f:
            data = f.read()
        if path.endswith(".jsonl"):
            rows.extend(json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip())
        else:
            import pyarrow.parquet as pq

            rows.extend(pq.read_table(io.BytesIO(data)).to_pylist())
    for row in rows:
        for field in time_fields:
            row[field] = _parse_time(row.get(field))
    return rows


# --------------------------------------------------------------------------
# Plotting


def _matplotlib():
    matplotlib = require("matplotlib", _FEATURE, "monitoring")
    require("matplotlib.dates", _FEATURE, "monitoring")  # registers datetime axes
    return matplotlib


def _figure(width: float = 9.0, height: float = 3.6, rows: int = 1, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


_SVG_COUNTER = [0]


def _svg(fig) -> str:
    """The figure as inline SVG markup (text as text, ids unique per figure)."""
    matplotlib = _matplotlib()
    _SVG_COUNTER[0] += 1
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"hybridflow-{_SVG_COUNTER[0]}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


_BUCKETS = [(60, "1 min"), (300, "5 min"), (900, "15 min"), (1800, "30 min"), (3600, "1 h"),
            (3 * 3600, "3 h"), (6 * 3600, "6 h"), (86400, "1 day"), (7 * 86400, "1 week")]
_COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5"]


def _bucket(times: list[datetime.datetime], max_bars: int = 60) -> tuple[int, str]:
    span = (max(times) - min(times)).total_seconds() if times else 0
    for seconds, label in _BUCKETS:
        if span / seconds <= max_bars:
            return seconds, label
    return _BUCKETS[-1]


def _floor(t: datetime.datetime, seconds: int) -> datetime.datetime:
    epoch = t.timestamp()
    return datetime.datetime.fromtimestamp(epoch - epoch % seconds, datetime.timezone.utc)


def _time_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=datetime.timezone.utc))


def alerts_over_time(alerts: list[dict]) -> Section:
    """Stacked bars: alerts per time bucket (event time), one colour per rule."""
    _matplotlib()
    times = [a["event_time"] for a in alerts]
    seconds, label = _bucket(times)
    per_rule: dict[str, Counter] = defaultdict(Counter)
    for a in alerts:
        per_rule[a["rule"]][_floor(a["event_time"], seconds)] += 1
    buckets = sorted({b for counts in per_rule.values() for b in counts})
    fig, (ax,) = _figure()
    bottom = [0] * len(buckets)
    width = datetime.timedelta(seconds=seconds * 0.85)
    for i, rule in enumerate(sorted(per_rule)):
        heights = [per_rule[rule][b] for b in buckets]
        ax.bar(buckets, heights, width=width, bottom=bottom, align="edge", label=rule,
               color=_COLORS[i % len(_COLORS)])
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    _time_axis(ax)
    ax.set_ylabel(f"alerts per {label}")
    ax.set_xlabel("event time (UTC)")
    ax.legend(frameon=False, ncols=min(4, len(per_rule)), loc="upper left")
    return Section(
        "Alerts over time", _svg(fig),
        caption=f"{len(alerts)} alerts by event time, per {label}, stacked by rule.",
    )


def top_keys(values: dict[str, float], highlighted: set, title: str, what: str, source: str,
             limit: int = 12) -> Section:
    """Horizontal bars of the keys with the highest ``values``; keys in
    ``highlighted`` (say, those with alerts) in red. ``what`` names the
    measure (``spend``), ``source`` where it comes from."""
    _matplotlib()
    top = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    fig, (ax,) = _figure(height=0.26 * len(top) + 1.0)
    names = [key for key, _ in reversed(top)]
    numbers = [value for _, value in reversed(top)]
    colors = ["#d62728" if key in highlighted else "#4269d0" for key in names]
    ax.barh(names, numbers, color=colors)
    for y, value in enumerate(numbers):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.set_xlabel(f"{what} ({source})")
    ax.margins(x=0.12)
    ax.grid(axis="y", visible=False)
    flagged = sum(key in highlighted for key, _ in top)
    return Section(
        title, _svg(fig),
        caption=f"The {len(top)} with the highest {what} ({source}); {flagged} of them (red) have alerts.",
    )


def window_aggregates(rows: list[dict], key: str, count_field: str, sum_field: str) -> Section:
    """Per window: total of ``sum_field`` and the busiest key; and the
    distribution of ``count_field`` per key and window."""
    _matplotlib()
    final: dict[tuple, dict] = {}
    for row in rows:  # streaming runs may hold several panes: keep the last
        k = (row[key], row["window_start"], row["window_end"])
        if k not in final or row.get("pane_index", 0) > final[k].get("pane_index", 0):
            final[k] = row
    totals: dict[datetime.datetime, float] = defaultdict(float)
    busiest: dict[datetime.datetime, int] = defaultdict(int)
    for (_, start, _), row in final.items():
        totals[start] += row[sum_field] or 0.0
        busiest[start] = max(busiest[start], row[count_field] or 0)
    starts = sorted(totals)
    fig, (left, right) = _figure(width=10.0, height=3.6, cols=2)
    left.plot(starts, [totals[s] for s in starts], color="#4269d0", linewidth=1.2, label=f"sum of {sum_field}")
    left.set_ylabel(f"{sum_field} per window")
    twin = left.twinx()
    twin.plot(starts, [busiest[s] for s in starts], color="#ff725c", linewidth=1.0, label=f"max {count_field}")
    twin.set_ylabel(f"max {count_field} of one {key}")
    twin.spines["top"].set_visible(False)
    _time_axis(left)
    left.set_xlabel("window start (UTC)")
    handles = left.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    left.legend(handles=handles, frameon=False, loc="upper left")
    counts = Counter(row[count_field] or 0 for row in final.values())
    xs = sorted(counts)
    right.bar(xs, [counts[x] for x in xs], color="#6cc5b0", width=0.8)
    right.set_yscale("log")
    right.set_xlabel(f"{count_field} of one {key} in one window")
    right.set_ylabel(f"({key}, window) pairs")
    return Section(
        "Window aggregates", _svg(fig),
        caption=f"{len(final)} windows of {len({k[0] for k in final})} {key}s: left, the {sum_field} of "
        f"all {key}s per window and the busiest {key}; right, how many records a {key} had per window.",
    )


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def job_section(document: dict) -> Section:
    counts = document.get("counts", {})
    rows = [
        ("state", document.get("state")),
        ("runner", document.get("runner")),
        ("start", _parse_time(document.get("start"))),
        ("end", _parse_time(document.get("end"))),
        ("duration (s)", document.get("duration_seconds")),
        ("deadline (s)", document.get("deadline_seconds")),
        ("deadline exceeded", document.get("deadline_exceeded")),
    ] + [(name.replace("_", " "), value) for name, value in counts.items() if not isinstance(value, dict)]
    cells = "".join(
        f'<div><span>{html.escape(name)}</span><b>{html.escape(_cell(value) or "none")}</b></div>'
        for name, value in rows
    )
    return Section("Job", html=f'<div class="facts">{cells}</div>', caption="From the run's --metrics_json.")


# --------------------------------------------------------------------------
# A pipeline's report


def pipeline_report(spec, directory: str, metrics: Optional[dict]) -> Report:
    """The report of ``spec``'s outputs under ``directory``: the job (from
    ``metrics``), alerts over time, the pipeline's own sections
    (``spec.report``), counts and the latest alerts."""
    names = list(spec.sinks(spec.options([])))
    rows = {name: read_output(directory, name, ("event_time",) if name == "alerts" else ()) for name in names}
    if not any(rows.values()):
        raise UsageError(
            f"{directory}: no {spec.name} outputs found ({', '.join(f'{n}*' for n in names)} as .jsonl or .parquet); "
            f"give the --output directory of a `hybridflow run {spec.name}` batch run"
        )
    alerts, dead, late = rows.get("alerts", []), rows.get("dead_letters", []), rows.get("late", [])
    sections = [job_section(metrics)] if metrics else []
    if alerts:
        sections.append(alerts_over_time(alerts))
    if spec.report is not None:
        sections += spec.report(directory)
    by_rule = Counter(a["rule"] for a in alerts)
    by_reason = Counter(d["error_type"] for d in dead)
    counts = [("alerts", len(alerts))] + [(f"alerts: {r}", n) for r, n in sorted(by_rule.items())]
    counts += [("dead letters", len(dead))] + [(f"dead letters: {r}", n) for r, n in sorted(by_reason.items())]
    counts += [("late records", len(late)), ("keys with alerts", len({a["key"] for a in alerts}))]
    counts += [(f"{name.replace('_', ' ')} rows", len(rows[name]))
               for name in names if name not in ("alerts", "dead_letters", "late")]
    sections.append(Section("Counts", html=_table(["", "count"], counts)))
    latest = sorted(alerts, key=lambda a: (a["event_time"], a["rule"], a["key"]), reverse=True)[:15]
    if latest:
        sections.append(Section(
            "Latest alerts",
            html=_table(["event time", "rule", "key", "value", "message"],
                        [(a["event_time"], a["rule"], a["key"], a["value"], a["message"]) for a in latest]),
        ))
    return Report(f"{spec.name} report", f"outputs under {directory}", sections)


# --------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; background: #fff; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
.subtitle { color: #666; margin-top: 0; }
section { margin: 2rem 0; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; }
figcaption, .caption { color: #555; font-size: 0.9rem; margin-top: 0.3rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.25rem 0.8rem 0.25rem 0; border-bottom: 1px solid #eee;
         vertical-align: top; }
th { color: #555; }
.facts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 0.4rem 1.5rem; font-size: 0.9rem; }
.facts div { display: flex; justify-content: space-between; border-bottom: 1px solid #eee; padding: 0.2rem 0; }
.facts span { color: #555; margin-right: 0.5rem; }
"""


def render_report(pipeline: str, directory: str, metrics_json: Optional[str] = None) -> str:
    """The HTML text of ``pipeline``'s report on the outputs under ``directory``
    (``pipeline``: anything :func:`~hybridflow.pipelines.get_pipeline` takes)."""
    from hybridflow.pipelines import get_pipeline

    report = pipeline_report(get_pipeline(pipeline), directory, _read_metrics(directory, metrics_json))
    parts = []
    for section in report.sections:
        body = ""
        if section.svg:
            caption = f"<figcaption>{html.escape(section.caption)}</figcaption>" if section.caption else ""
            body += f'<figure class="plot">{section.svg}{caption}</figure>'
        elif section.caption:
            body += f'<p class="caption">{html.escape(section.caption)}</p>'
        body += section.html
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>{body}</section>")
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1>"
        f"<p class=\"subtitle\">{html.escape(report.subtitle)} &middot; generated {generated}</p>"
        + "".join(parts)
        + "</body></html>\n"
    )


def _read_metrics(directory: str, path: Optional[str]) -> Optional[dict]:
    from apache_beam.io.filesystems import FileSystems

    candidate = path or posixpath.join(directory.rstrip("/"), "metrics.json")
    if not FileSystems.exists(candidate):
        if path:
            raise UsageError(f"--metrics={path}: no such file")
        return None
    with FileSystems.open(candidate) as f:
        try:
            return json.loads(f.read().decode("utf-8"))
        except ValueError as exc:
            raise UsageError(f"{candidate}: not a --metrics_json file ({exc})") from None


def write_report(pipeline: str, directory: str, out: str, metrics_json: Optional[str] = None) -> str:
    """Writes the report to ``out``; returns ``out``."""
    from apache_beam.io.filesystems import FileSystems

    from hybridflow.pipelines import get_pipeline
    from hybridflow.pipelines.outputs import read_success

    get_pipeline(pipeline)  # an unknown pipeline is the first error
    read_success(directory)  # a published run, or one line saying there is none
    text = render_report(pipeline, directory, metrics_json)
    if "://" in out:
        with FileSystems.create(out, mime_type="text/html") as f:
            f.write(text.encode("utf-8"))
    else:
        import os

        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    return out
