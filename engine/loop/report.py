"""`automem loop report`: one self-contained HTML page of a loop, from its stream alone.

The page shows the loop's settings, its learning curves (held-out mean progression with
its 95% interval, from the baseline at iteration 0; the selection-seed figures of loop 1's
and loop 2's candidates against what they challenged), a table per iteration, and links to
the held-out episodes with the best and the worst final progression, whose episode reports
(`engine.views.report`) are written in a folder beside it. Like the episode report it fetches
nothing: inline CSS, SVG drawn here, no script; every text from the log is escaped. It is
a function of the log only (sorted, no wall time): the same store gives the same bytes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from automem.engine.files import write_file
from automem.engine.log.port import EventLog, last_event
from automem.engine.loop.records import Heldout, decode
from automem.engine.loop.table import Row, loop_events, status
from automem.engine.views.report import audited_report
from automem.schemas.events import EpisodeEnded, LoopIterationStarted, LoopStageDone
from automem.schemas.streams import episode_stream

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 52, 16, 12, 34  # a chart's size and margins, in px
CSS = """
:root { --bg: #f6f6f4; --fg: #1c1c1e; --muted: #6b6b72; --line: #e3e3df; --card: #fff;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
* { box-sizing: border-box; }
body { margin: 0; padding: 14px 20px 24px; background: var(--bg); color: var(--fg);
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
h1 { font-size: 18px; font-weight: 600; margin: 0 0 10px; }
h2 { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 8px; }
code, .id { font-family: var(--mono); font-size: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin: 0 0 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 12px; }
svg { width: 100%; max-width: 720px; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.legend span { margin-right: 14px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.v { white-space: pre-wrap; }
td.v code { overflow-wrap: anywhere; }
.none { color: var(--muted); font-style: italic; }
"""
BLUE, ORANGE = "#2563eb", "#c77700"


class Point(NamedTuple):
    x: int
    y: float
    low: float | None = None  # the 95% interval, drawn as a band or an error bar
    high: float | None = None


class Series(NamedTuple):
    name: str
    colour: str
    points: list[Point]
    band: bool = False  # the interval as a shaded band (else error bars)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _span(figures: dict[str, float], prefix: str, mean: str, sign: str = "+") -> str:
    """`mean [low, high]` as the status table prints it (signed for a difference), or '-' without the figure."""
    if f"{prefix}.{mean}" not in figures:
        return "-"
    low, high = figures.get(f"{prefix}.low", 0.0), figures.get(f"{prefix}.high", 0.0)
    return f"{figures[f'{prefix}.{mean}']:.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


# ------------------------------------------------------------------------- charts


def chart(title: str, series: list[Series], y_label: str) -> str:
    """An inline SVG line chart over iterations; the coordinates are rounded so the bytes are stable."""
    points = [p for s in series for p in s.points]
    if not points:
        return f'<p class="none">{_e(title)}: no figures recorded yet</p>'
    values = [v for p in points for v in (p.y, p.low, p.high) if v is not None]
    lo, hi = min(0.0, *values), max(values)
    hi = hi if hi - lo > 1e-9 else lo + 1.0
    first, last = min(p.x for p in points), max(p.x for p in points)

    def sx(x: float) -> str:  # half an iteration of room each side: a lone point sits in the middle
        return f"{LEFT + (x - first + 0.5) / (last - first + 1) * (WIDTH - LEFT - RIGHT):.1f}"

    def sy(y: float) -> str:
        return f"{TOP + (hi - y) / (hi - lo) * (HEIGHT - TOP - BOTTOM):.1f}"

    out = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(title)}">']
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(y)}" y2="{sy(y)}" stroke="#eee"/>'
                   f'<text x="{LEFT - 6}" y="{sy(y)}" text-anchor="end" dominant-baseline="middle">{y:.3g}</text>')
    for x in range(first, last + 1):
        out.append(f'<text x="{sx(x)}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">iteration</text>'
               f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:.1f})">{_e(y_label)}</text>')
    for s in series:
        ranged = [(p.x, p.low, p.high) for p in s.points if p.low is not None and p.high is not None]
        if s.band and len(ranged) > 1:
            edge = [f"{sx(x)},{sy(high)}" for x, _, high in ranged] + [f"{sx(x)},{sy(low)}" for x, low, _ in reversed(ranged)]
            out.append(f'<polygon points="{" ".join(edge)}" fill="{s.colour}" fill-opacity="0.15" stroke="none"/>')
        else:
            for x, low, high in ranged:
                mid = float(sx(x))
                out.append(f'<path d="M{mid:.1f} {sy(low)}V{sy(high)}M{mid - 4:.1f} {sy(low)}H{mid + 4:.1f}'
                           f'M{mid - 4:.1f} {sy(high)}H{mid + 4:.1f}" stroke="{s.colour}" fill="none"/>')
        if len(s.points) > 1:
            line = " ".join(f"{sx(p.x)},{sy(p.y)}" for p in s.points)
            out.append(f'<polyline points="{line}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        for p in s.points:
            interval = f" [{p.low:.3f}, {p.high:.3f}]" if p.low is not None and p.high is not None else ""
            out.append(f'<circle cx="{sx(p.x)}" cy="{sy(p.y)}" r="3.5" fill="{s.colour}">'
                       f"<title>{_e(s.name)}, iteration {p.x}: {p.y:.3f}{interval}</title></circle>")
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{s.colour}"></i>{_e(s.name)}</span>' for s in series)
    return f'<h2>{_e(title)}</h2><div class="legend">{legend}</div>' + "".join(out)


def _heldout(rows: list[Row]) -> list[Series]:
    """Held-out mean progression per iteration, the baseline (when recorded) as iteration 0."""
    base = rows[0].baseline if rows else {}
    points = [Point(x, f["heldout.mean_progression"], f.get("heldout.low"), f.get("heldout.high"))
              for x, f in [(0, base), *((r.iteration, r.heldout) for r in rows)]
              if "heldout.mean_progression" in f]
    series = [Series("held-out mean progression (band: 95% interval)", BLUE, points, band=True)]
    arm = rows[0].compare if rows else {}
    if "heldout.mean_progression" in arm and points:  # the baseline agent, level across the iterations
        value = arm["heldout.mean_progression"]
        series.append(Series(f"{rows[0].compare_agent} (no memory), the same seeds", ORANGE,
                             [Point(points[0].x, value), Point(points[-1].x, value)]))
    return series


def _selection(figures: list[tuple[int, dict[str, float]]], against: str) -> list[Series]:
    """A loop's candidate and what it challenged on the selection seeds, per iteration; the candidate's bar is the
    challenged mean plus the 95% interval of the paired difference (clear of the other point: a real change)."""
    cand, other = [], []
    for it, f in figures:
        if "select.candidate" in f and f"select.{against}" in f:
            base = f[f"select.{against}"]
            cand.append(Point(it, f["select.candidate"], base + f.get("select.low", 0.0),
                              base + f.get("select.high", 0.0)))
            other.append(Point(it, base))
    return [Series("candidate (bar: 95% interval of the difference)", BLUE, cand), Series(against, ORANGE, other)]


# ------------------------------------------------------------------------ episodes


def extremes(log: EventLog, events: list[object]) -> list[tuple[str, str, float]]:
    """(label, episode, final progression) of the best and the worst held-out episode the loop recorded,
    in the order of (progression, episode id): two whenever two ended, one when one did, none when none."""
    heldout = [r for r in (decode(e) for e in events if isinstance(e, LoopStageDone))
               if isinstance(r, Heldout) and not r.agent]  # the comparison arm's are not the loop's
    ids = sorted({ep for r in heldout for ep in r.episodes})
    ended = []
    for ep in ids:
        last = last_event(log, episode_stream(ep))
        if isinstance(last, EpisodeEnded):
            ended.append((last.progression, ep))
    if not ended:
        return []
    ended.sort()
    return [("best", ended[-1][1], ended[-1][0])] + [("worst", ep, value) for value, ep in ended[:1] if len(ended) > 1]


# ---------------------------------------------------------------------------- page


def _table(rows: list[Row], first: LoopIterationStarted | None) -> str:
    """One row per iteration, the baseline (the structure and model iteration 1 started from) as row 0."""
    yes = {True: "yes", False: "no", None: "-"}
    head = ("#", "status", "structure", "accepted", "model", "promoted", "loop 1: candidate / parent, diff [95%]",
            "loop 2: candidate / incumbent, diff [95%]", "held-out progression [95%]", "held-out figures")

    def sel(f: dict[str, float], against: str) -> str:
        if "select.candidate" not in f:
            return "-"
        return f"{f['select.candidate']:.3f} / {_f(f.get(f'select.{against}'))}, {_span(f, 'select', 'difference')}"

    def others(f: dict[str, float]) -> str:
        """The proficiency figures, each with its interval where the stage recorded one."""
        skip = {"heldout.mean_progression", "heldout.low", "heldout.high"}
        names = sorted(k for k in f if k not in skip and not k.endswith((".low", ".high")))
        return "\n".join(f"{k.removeprefix('heldout.')} {f[k]:.3f}" + (
            f" [{f[k + '.low']:.3f}, {f[k + '.high']:.3f}]" if k + ".low" in f else "") for k in names)

    body = []
    base = rows[0].baseline if rows else {}
    if base and first is not None:
        body.append(["0", "baseline", f"<code>{_e(first.structure)}</code>", "-", f"<code>{_e(first.model or 'base')}</code>",
                     "-", "-", "-", _e(_span(base, "heldout", "mean_progression", "-")), _e(others(base))])
    arm = rows[0].compare if rows else {}
    if arm:
        body.append(["0", f"compare: {_e(rows[0].compare_agent)}", "- (no memory)", "-", "base", "-", "-", "-",
                     _e(_span(arm, "heldout", "mean_progression", "-")), "memory figures: n/a"])
    for r in rows:
        status = r.status + (f": {r.failure}" if r.failure else "")
        structure = _e(r.structure) + (f"<br>candidate {_e(r.candidate_structure)}" if r.candidate_structure else "")
        model = _e(r.model or "base") + (f"<br>candidate {_e(r.candidate_model)}" if r.candidate_model else "")
        body.append([_e(r.iteration), _e(status), f"<code>{structure}</code>", yes[r.accepted],
                     f"<code>{model}</code>", yes[r.promoted], _e(sel(r.loop1, "parent")),
                     _e(sel(r.selection, "incumbent")), _e(_span(r.heldout, "heldout", "mean_progression", "-")),
                     _e(others(r.heldout))])
    cells = "".join("<tr>" + "".join(f'<td class="v">{c}</td>' for c in row) + "</tr>" for row in body)
    return "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>" + cells + "</table>"


class LoopPage(NamedTuple):
    loop: str
    html: str
    episodes: list[tuple[str, str, float]]  # as `extremes` gives them, linked at `folder/<episode>.html`


def loop_page(log: EventLog, loop: str | None, folder: str) -> LoopPage:
    """The page of `loop` (the one started last, without it), linking its best and worst held-out
    episodes at `folder/<episode>.html` relative to the page."""
    doc = status(log, loop)
    name, settings, rows = doc.loop, doc.settings, doc.iterations
    events = loop_events(log, name)
    first = next((e for e in events if isinstance(e, LoopIterationStarted) and e.iteration == 1), None)
    picked = extremes(log, events)
    links = "".join(f'<li>{label}: <a href="{_e(quote(folder))}/{_e(quote(ep))}.html"><code>{_e(ep)}</code></a> '
                    f"(final progression {value:.3f})</li>" for label, ep, value in picked)
    curves = [chart("Held-out progression per iteration (0: the baseline)", _heldout(rows), "mean progression"),
              chart("Loop 1 on the selection seeds: candidate structure vs parent",
                    _selection([(r.iteration, r.loop1) for r in rows], "parent"), "mean progression"),
              chart("Loop 2 on the selection seeds: candidate model vs incumbent",
                    _selection([(r.iteration, r.selection) for r in rows], "incumbent"), "mean progression")]
    options = "".join(f"<tr><th>{_e(k)}</th><td class=\"v\"><code>{_e(v)}</code></td></tr>" for k, v in sorted(settings.items()))
    title = f"automem loop report — {name}"
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>automem loop <span class="id">{_e(name)}</span></h1>
<section class="charts">{"".join(f'<div class="card">{c}</div>' for c in curves)}</section>
<section class="card"><h2>Iterations</h2>{_table(rows, first)}</section>
<section class="card"><h2>Held-out episodes: best and worst final progression</h2>
{f"<ul>{links}</ul>" if links else '<p class="none">no held-out episode ended yet</p>'}</section>
<section class="card"><h2>Settings</h2><table>{options}</table></section>
</body>
</html>
"""
    return LoopPage(name, page, picked)


def write_report(log: EventLog, loop: str | None, path: Path) -> tuple[str, list[str]]:
    """Write the page at `path` and the linked episodes' reports in `<stem>-episodes/` beside it;
    returns the loop's id and the episodes written."""
    folder = f"{path.stem}-episodes"
    made = loop_page(log, loop, folder)
    episodes = [ep for _, ep, _ in made.episodes]
    pages = {ep: audited_report(log, ep) for ep in episodes}  # as `automem report` writes them
    for ep, text in pages.items():  # the episodes first: the loop's page never links to a page not there
        write_file(path.parent / folder / f"{ep}.html", text, "the loop's episode pages")
    write_file(path, made.html, "the loop's page")
    return made.loop, episodes
