"""Charts drawn on the server as SVG: no chart library, no script, nothing from another host;
labels in the reader's language, dates in the deployment's zone."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from shared.domain.progress import FieldProgress
from shared.domain.state import Task
from shared.i18n import format_date, gettext, names

BAR_HEIGHT = 26
LABEL_WIDTH = 190
BAR_WIDTH = 420


def field_progress_chart(fields: list[FieldProgress]) -> Markup:
    """One horizontal bar per field of cooperation: mean progress, with late and at-risk counts."""
    height = BAR_HEIGHT * len(fields) + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(gettext("Progress per field of cooperation"))}" '
        f'viewBox="0 0 {LABEL_WIDTH + BAR_WIDTH + 170} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, row in enumerate(fields):
        y = 5 + i * BAR_HEIGHT
        width = BAR_WIDTH * row.average_percent / 100
        colour = "#c0392b" if row.late else "#e67e22" if row.at_risk else "#2e86c1"
        label = escape(names.field(row.field))
        parts += [
            f'<text x="0" y="{y + 17}" class="label">{label}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{BAR_WIDTH}" height="16" fill="#eceff1"/>',
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{width:.1f}" height="16" fill="{colour}" '
            f'data-field="{escape(str(row.field))}" data-percent="{row.average_percent:g}"/>',
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + 17}" class="value">' + escape(_bar_text(row)) + "</text>",
        ]
    parts.append("</svg>")
    return Markup("".join(parts))


def _bar_text(row: FieldProgress) -> str:
    text = gettext("%(percent)s%% of %(tasks)s tasks", percent=f"{row.average_percent:g}", tasks=row.tasks)
    if row.late:
        text += " · " + gettext("%(count)s late", count=row.late)
    if row.at_risk:
        text += " · " + gettext("%(count)s at risk", count=row.at_risk)
    return text


def milestone_timeline(task: Task, now: datetime, *, marker: str = "now") -> Markup:
    """The task's milestones on a time axis: each due date, and when it was met; a milestone met
    late or still open past its due date is drawn in red. ``now`` is the moment shown, marked
    ``marker`` (an as-of replay's moment)."""
    moments = [task.created_at, task.due, now, *(m.due for m in task.milestones)]
    moments += [m.met_at for m in task.milestones if m.met_at is not None]
    start, end = min(moments), max(moments)
    span = max((end - start).total_seconds(), 1.0)
    width, left, row_height = 640, 10, 34
    height = 60 + row_height * len(task.milestones)

    def x(moment: datetime) -> float:
        return left + width * (moment - start).total_seconds() / span

    parts = [
        f'<svg class="timeline" role="img" aria-label="{escape(gettext("Milestones on a time axis"))}" '
        f'viewBox="0 0 {width + 2 * left} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="24" x2="{left + width}" y2="24" stroke="#90a4ae"/>',
        f'<line x1="{x(now):.1f}" y1="14" x2="{x(now):.1f}" y2="{height}" stroke="#607d8b" stroke-dasharray="3 3"/>',
        f'<text x="{x(now):.1f}" y="10" class="tick">{escape(marker)}</text>',
        f'<text x="{left}" y="38" class="tick">{escape(format_date(start))}</text>',
        f'<text x="{left + width}" y="38" class="tick end">{escape(format_date(end))}</text>',
    ]
    for i, milestone in enumerate(sorted(task.milestones, key=lambda m: m.due)):
        y = 72 + i * row_height
        finished = milestone.met_at or now
        late = finished > milestone.due
        colour = "#c0392b" if late else "#27ae60"
        state = "late" if late else "met" if milestone.met_at else "open"
        parts += [
            f'<g class="milestone {state}" data-state="{state}">',
            f'<line x1="{x(milestone.due):.1f}" y1="{y}" x2="{x(finished):.1f}" y2="{y}" stroke="{colour}" '
            'stroke-width="3"/>',
            f'<circle cx="{x(milestone.due):.1f}" cy="{y}" r="5" fill="#fff" stroke="{colour}" stroke-width="2"/>',
        ]
        if milestone.met_at is not None:
            parts.append(f'<rect x="{x(milestone.met_at) - 4:.1f}" y="{y - 4}" width="8" height="8" fill="{colour}"/>')
        label = gettext(
            "%(title)s — due %(due)s, %(state)s",
            title=milestone.title,
            due=format_date(milestone.due),
            state=names.state(state),
        )
        parts += [f'<text x="{left}" y="{y - 10}" class="label">{escape(label)}</text>', "</g>"]
    parts.append("</svg>")
    return Markup("".join(parts))
