"""The HTML report of a cohort run: summary, volume histograms per group, QC flags, measures.

One self-contained file (inline CSS and SVG, no script, nothing fetched), so it opens in any
browser and can be mailed or archived with the run.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path

from ..conventions import MEASURE_COLUMNS, is_flagged
from .store import _fmt

HISTOGRAMS = (("lv_edv_ml", "LV EDV (mL)"), ("lv_esv_ml", "LV ESV (mL)"), ("lv_ef", "LV EF (%)"),
              ("lv_mass_g", "LV mass (g)"), ("rv_edv_ml", "RV EDV (mL)"), ("rv_ef", "RV EF (%)"))
_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f0f0f0}td.l,th.l{text-align:left}
tr.flag td{background:#fff3cd}.grid{display:flex;flex-wrap:wrap;gap:16px}.legend span{margin-right:1em}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}"""


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def histogram_svg(values_by_group: dict, title: str, *, bins: int = 12, width: int = 320, height: int = 180) -> str:
    """An SVG histogram of ``{group: [values]}`` (stacked bars, one colour per group)."""
    groups = {g: [x for x in (_num(v) for v in vals) if x is not None] for g, vals in values_by_group.items()}
    allv = [x for vals in groups.values() for x in vals]
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">' \
           f'<title>{html.escape(title)}</title><text x="4" y="14" font-size="12">{html.escape(title)}</text>'
    if not allv:
        return head + '<text x="4" y="40" font-size="11">no values</text></svg>'
    lo, hi = min(allv), max(allv)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    step = (hi - lo) / bins
    counts = {g: [0] * bins for g in groups}
    for g, vals in groups.items():
        for x in vals:
            counts[g][min(int((x - lo) / step), bins - 1)] += 1
    top = max(sum(c[i] for c in counts.values()) for i in range(bins))
    x0, y0, pw, ph = 30, 22, width - 40, height - 50
    bw = pw / bins
    parts = [head, f'<line x1="{x0}" y1="{y0 + ph}" x2="{x0 + pw}" y2="{y0 + ph}" stroke="#444"/>',
             f'<text x="{x0 - 4}" y="{y0 + 8}" font-size="10" text-anchor="end">{top}</text>']
    for i in range(bins):
        base = 0
        for k, g in enumerate(groups):
            c = counts[g][i]
            if c:
                h = ph * c / top
                y = y0 + ph - ph * (base + c) / top
                parts.append(f'<rect x="{x0 + i * bw + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                             f'fill="{_COLOURS[k % len(_COLOURS)]}"><title>{html.escape(str(g))}: {c}</title></rect>')
                base += c
    parts.append(f'<text x="{x0}" y="{y0 + ph + 14}" font-size="10">{lo:.3g}</text>')
    parts.append(f'<text x="{x0 + pw}" y="{y0 + ph + 14}" font-size="10" text-anchor="end">{hi:.3g}</text>')
    return "".join(parts) + "</svg>"


def write_report(out_dir, results: list[dict], failures: list[dict], *, subjects=None, title: str = "Cohort run") -> Path:
    """Write ``out_dir/report.html`` from the run's result records and failures; returns its path."""
    from ..io import atomic_path

    out = Path(out_dir)
    groups = {s.id: s.group for s in subjects or []}
    rows = sorted(results, key=lambda r: r["subject"])
    by_group: dict = {}
    for r in rows:
        by_group.setdefault(groups.get(r["subject"]) or r.get("group") or "all", []).append(r["measures"])
    flagged = [r for r in rows if is_flagged(r["measures"].get("qc_flag"))]
    params = rows[0].get("parameters", {}) if rows else {}
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>{len(rows)} subject(s) finished, {len(failures)} failed, {len(flagged)} flagged by QC. "
             f"Model <b>{e(str(params.get('model', '-')))}</b> {e(str(params.get('model_version', '')))}"
             f"{', refined with ' + e(str(params.get('atlases'))) if params.get('refine') else ''}. "
             f"Written {e(time.strftime('%Y-%m-%d %H:%M'))}. Folder: {e(str(out.resolve()))}</p>",
             "<h2>Volumes by group</h2><p class='legend'>"]
    for k, g in enumerate(by_group):
        parts.append(f"<span><i class='sw' style='background:{_COLOURS[k % len(_COLOURS)]}'></i>{e(str(g))} "
                     f"({len(by_group[g])})</span>")
    parts.append("</p><div class='grid'>")
    for key, label in HISTOGRAMS:
        parts.append(histogram_svg({g: [m.get(key) for m in ms] for g, ms in by_group.items()}, label))
    parts.append("</div><h2>QC flags</h2>")
    if flagged:
        parts.append("<table><tr><th class='l'>subject</th><th class='l'>flags</th></tr>")
        parts += [f"<tr><td class='l'>{e(r['subject'])}</td><td class='l'>{e(r['measures']['qc_flag'])}</td></tr>" for r in flagged]
        parts.append("</table>")
    else:
        parts.append("<p>No subject was flagged.</p>")
    if failures:
        parts.append("<h2>Failures</h2><table><tr><th class='l'>subject</th><th class='l'>error</th></tr>")
        parts += [f"<tr><td class='l'>{e(f['subject'])}</td><td class='l'>{e(str(f.get('error')))}</td></tr>" for f in failures]
        parts.append("</table>")
    parts.append("<h2>Measures</h2><table><tr>" + "".join(
        f"<th class='{'l' if c in ('subject', 'qc_flag') else ''}'>{e(c)}</th>" for c in MEASURE_COLUMNS) + "</tr>")
    for r in rows:
        m = r["measures"]
        cls = " class='flag'" if is_flagged(m.get("qc_flag")) else ""
        parts.append(f"<tr{cls}>" + "".join(
            f"<td class='{'l' if c in ('subject', 'qc_flag') else ''}'>{e(_fmt(m.get(c)))}</td>" for c in MEASURE_COLUMNS) + "</tr>")
    parts.append("</table><p>Volumes in mL, mass in g (density 1.05 g/mL), EF in %. The plausibility column is "
                 "empty until a T-L shape model is given.</p></body></html>")
    path = out / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
