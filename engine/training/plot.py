"""The loss curve as one self-contained HTML page with an inline SVG (no script, no network)."""

from __future__ import annotations

from html import escape

W, H, PAD = 640, 320, 48


def loss_html(points: list[tuple[int, float]], title: str) -> str:
    """Training loss per optimizer step, axes labelled with the first and last step and the loss range."""
    if not points:
        return f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title><p>no steps logged</p>\n"
    steps = [s for s, _ in points]
    losses = [v for _, v in points]
    lo, hi = min(losses), max(losses)
    span_x, span_y = max(steps[-1] - steps[0], 1), max(hi - lo, 1e-9)

    def x(step: int) -> float:
        return PAD + (step - steps[0]) / span_x * (W - 2 * PAD)

    def y(value: float) -> float:
        return H - PAD - (value - lo) / span_y * (H - 2 * PAD)

    line = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)
    labels = [(PAD - 6, y(hi) + 4, "end", f"{hi:.4g}"), (PAD - 6, y(lo) + 4, "end", f"{lo:.4g}"),
              (x(steps[0]), H - PAD + 18, "middle", str(steps[0])), (x(steps[-1]), H - PAD + 18, "middle", str(steps[-1])),
              (W / 2, H - 8, "middle", "step"), (12, H / 2, "start", "loss")]
    text = "".join(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}">{escape(t)}</text>'
                   for tx, ty, anchor, t in labels)
    return (f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:24px}text{font-size:12px;fill:#444}</style>"
            f"<h1 style=\"font-size:16px\">{escape(title)}</h1>"
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">'
            f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#ccc"/>'
            f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="2"/>{text}</svg>'
            f"<p>{len(points)} steps, final loss {losses[-1]:.4f}</p>\n")
