"""The protocol's figures as one self-contained HTML page: a bar chart per env (this run and
the published rows beside it, with standard-error bars), the departures and the sources."""

from __future__ import annotations

import html

from automem.engine.protocol.balrog import ProtocolResult, published_average, published_figure

WIDTH, BAR, GAP, LEFT, TOP = 640, 22, 8, 300, 10


def _bars(rows: list[tuple[str, float, float | None, bool]]) -> str:
    """One horizontal bar per (label, value %, error %, ours), on a 0..100 % axis."""
    scale = (WIDTH - LEFT - 20) / 100
    height = TOP * 2 + len(rows) * (BAR + GAP) + 16
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">']
    for tick in range(0, 101, 25):
        x = LEFT + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - 16}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 3}" font-size="10" text-anchor="middle">{tick}%</text>')
    for i, (label, value, error, ours) in enumerate(rows):
        y = TOP + i * (BAR + GAP)
        width = max(value * scale, 0.5)
        parts.append(f'<text x="{LEFT - 6}" y="{y + BAR * 0.7:.1f}" font-size="12" text-anchor="end">'
                     f'{html.escape(label)}</text>'
                     f'<rect x="{LEFT}" y="{y}" width="{width:.1f}" height="{BAR}" '
                     f'fill="{"#2b6cb0" if ours else "#a0aec0"}"><title>{value:.2f}%'
                     f'{"" if error is None else f" ± {error:.2f}"}</title></rect>')
        if error:
            lo, hi = LEFT + max(value - error, 0) * scale, LEFT + min(value + error, 100) * scale
            mid = y + BAR / 2
            parts.append(f'<path d="M{lo:.1f} {mid - 5:.1f}v10M{lo:.1f} {mid:.1f}H{hi:.1f}M{hi:.1f} {mid - 5:.1f}v10" '
                         'stroke="#1a202c" stroke-width="1.5" fill="none"/>')
        parts.append(f'<text x="{LEFT + width + 4 + (error or 0) * scale:.1f}" y="{y + BAR * 0.7:.1f}" font-size="11">'
                     f'{value:.2f}{"" if error is None else f" ± {error:.2f}"}</text>')
    return "".join(parts) + "</svg>"


def page(result: ProtocolResult) -> str:
    """The HTML document: nothing loaded from anywhere."""
    ours = f"this run: {result.model} ({result.agent})"
    sections = []
    charts = [(e.env, e.progression, e.standard_error, f"{e.episodes} episodes, at most {e.max_steps} steps")
              for e in result.envs]
    envs = [e.env for e in result.envs]
    if len(envs) > 1:
        charts.append(("average", result.average_progress, result.standard_error, "mean of the env means"))
    for name, value, error, note in charts:
        rows: list[tuple[str, float, float | None, bool]] = [(ours, value, error, True)]
        for row in result.published:
            figure = published_average(row, envs) if name == "average" else published_figure(row, name)
            if figure is not None:
                rows.append((row.name, figure.value, figure.error, False))
        sections.append(f"<h2>{html.escape(name)}</h2><p class=note>{html.escape(note)}</p>{_bars(rows)}")
    departures = "".join(f"<li>{html.escape(d)}</li>" for d in result.departures)
    sources = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in result.sources.items())
    return (f"<!doctype html><html><head><meta charset=utf-8><title>BALROG protocol: {html.escape(result.model)}"
            "</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}.note{color:#555}"
            "</style></head><body>"
            f"<h1>BALROG protocol — {html.escape(result.model)}, agent {html.escape(result.agent)}</h1>"
            f"<p>policy <code>{html.escape(result.policy)}</code>, sampling {html.escape(result.sampling)}; "
            "progression % ± standard error, computed as BALROG computes it</p>"
            + "".join(sections)
            + f"<h2>Departures from BALROG's protocol</h2><ul>{departures}</ul>"
            + (f"<h2>Sources</h2><ul>{sources}</ul>" if sources else "") + "</body></html>")
