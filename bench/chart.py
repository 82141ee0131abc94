"""bench/chart.py: the benchmark chart as a self-contained SVG (python3 standard library only).

Panels stack vertically. A bar panel draws one bar per subject (median of the repetitions, with
a whisker from the fastest to the slowest repetition); lockstep's bars are coloured, peers grey,
and every bar carries its value as text, so the chart reads without the table. Panels whose
values span more than 30x use a log scale, said in the panel title. A line panel draws one line
per subject over a shared x axis (log y).
"""

import math
from xml.sax.saxutils import escape

WIDTH = 960
LABEL_W = 330  # room for the subject names, left of the plot
VALUE_W = 120  # room for the value text, right of the longest bar
ROW_H = 22
TITLE_H = 34
GAP = 26
OURS = "#1f6fb2"
OURS_ALT = "#53a3e0"
PEER = "#9a9a9a"
FLOOR = "#d08c2c"
LINE_COLOURS = ["#1f6fb2", "#c0392b", "#27ae60", "#8e44ad", "#d08c2c", "#555555", "#17becf", "#e377c2",
                "#bcbd22", "#8c564b"]


def fmt(v, unit):
    if unit == "ns":
        if v >= 1e6:
            return f"{v / 1e6:.3g} ms"
        if v >= 1e3:
            return f"{v / 1e3:.3g} µs"
        return f"{v:.3g} ns"
    if unit == "ops/s":
        return f"{v / 1e6:.3g} M/s"
    return f"{v:.3g} {unit}"


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')


class Scale:
    """Maps a value to a bar length in [0, span]: linear from 0, or log over the data's decades."""

    def __init__(self, values, span, log=None):
        lo, hi = min(values), max(values)
        self.log = (hi / lo > 30) if log is None and lo > 0 else bool(log)
        self.span = span
        if self.log:
            self.lo = 10 ** math.floor(math.log10(lo))
            self.hi = 10 ** math.ceil(math.log10(hi))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
        else:
            self.lo, self.hi = 0.0, hi * 1.05 if hi > 0 else 1.0

    def __call__(self, v):
        if self.log:
            v = max(v, self.lo)
            return self.span * math.log10(v / self.lo) / math.log10(self.hi / self.lo)
        return self.span * v / self.hi

    def ticks(self):
        if self.log:
            out, t = [], self.lo
            while t <= self.hi * 1.0001:
                out.append(t)
                t *= 10
            return out
        step = 10 ** math.floor(math.log10(self.hi / 4))
        for m in (1, 2, 5, 10):
            if self.hi / (step * m) <= 6:
                step *= m
                break
        return [i * step for i in range(int(self.hi / step) + 1)]


def bar_panel(y0, title, rows, unit, note=""):
    """rows: (label, median, low, high, kind) with kind in {"ours", "ours_alt", "floor", "peer"}."""
    plot_w = WIDTH - LABEL_W - VALUE_W
    scale = Scale([r[2] for r in rows] + [r[3] for r in rows], plot_w)
    title = title + (" (log scale)" if scale.log else "")
    out = [text(10, y0 + 20, title, 15, weight="bold")]
    if note:
        out.append(text(WIDTH - 10, y0 + 20, note, 11, anchor="end", fill="#555"))
    top = y0 + TITLE_H
    height = ROW_H * len(rows)
    for t in scale.ticks():
        x = LABEL_W + scale(t)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + height}" stroke="#e4e4e4"/>')
        out.append(text(x, top + height + 13, fmt(t, unit), 10, anchor="middle", fill="#777"))
    colours = {"ours": OURS, "ours_alt": OURS_ALT, "floor": FLOOR, "peer": PEER}
    for i, (label, med, lo, hi, kind) in enumerate(rows):
        y = top + i * ROW_H
        weight = "bold" if kind.startswith("ours") else "normal"
        out.append(text(LABEL_W - 8, y + 15, label, 12, anchor="end", weight=weight))
        w = max(scale(med), 1.0)
        out.append(f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" fill="{colours[kind]}"/>')
        x1, x2 = LABEL_W + scale(lo), LABEL_W + scale(hi)
        out.append(f'<line x1="{x1:.1f}" y1="{y + ROW_H / 2}" x2="{x2:.1f}" y2="{y + ROW_H / 2}" stroke="#222"/>')
        out.append(text(LABEL_W + max(w, x2 - LABEL_W) + 6, y + 15, fmt(med, unit), 11, weight=weight))
    return out, TITLE_H + height + 20


def line_panel(y0, title, xs, series, xlabel, unit):
    """series: (label, [y per x or None], is_ours). x positions are evenly spaced categories."""
    plot_w = WIDTH - LABEL_W - VALUE_W
    plot_h = 200
    values = [v for _, ys, _ in series for v in ys if v]
    scale = Scale(values, plot_h, log=True)
    out = [text(10, y0 + 20, title + " (log scale)", 15, weight="bold")]
    top = y0 + TITLE_H
    for t in scale.ticks():
        y = top + plot_h - scale(t)
        out.append(f'<line x1="{LABEL_W}" y1="{y:.1f}" x2="{LABEL_W + plot_w}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(text(LABEL_W - 6, y + 4, fmt(t, unit), 10, anchor="end", fill="#777"))
    step = plot_w / max(len(xs) - 1, 1)
    for i, x in enumerate(xs):
        out.append(text(LABEL_W + i * step, top + plot_h + 15, x, 11, anchor="middle", fill="#555"))
    out.append(text(LABEL_W + plot_w / 2, top + plot_h + 32, xlabel, 11, anchor="middle", fill="#555"))
    for k, (label, ys, ours) in enumerate(series):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        pts = [(LABEL_W + i * step, top + plot_h - scale(v)) for i, v in enumerate(ys) if v]
        width = 3 if ours else 1.6
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 + k * 16
        out.append(f'<line x1="12" y1="{ly - 4}" x2="32" y2="{ly - 4}" stroke="{colour}" stroke-width="{width}"/>')
        out.append(text(38, ly, label, 12, weight="bold" if ours else "normal"))
    return out, TITLE_H + plot_h + 44


def render(title, subtitle, panels):
    """panels: list of ("bar", args) / ("line", args); returns the SVG document as a string."""
    body, y = [], 64
    for kind, args in panels:
        parts, h = (bar_panel if kind == "bar" else line_panel)(y, *args)
        body += parts
        y += h + GAP
    head = [text(10, 26, title, 19, weight="bold"), text(10, 46, subtitle, 12, fill="#555")]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
            f'viewBox="0 0 {WIDTH} {y}" font-family="DejaVu Sans, Arial, sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(head + body) + "\n</svg>\n")
