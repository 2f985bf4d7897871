"""The pull-request comment of ``render diff --format markdown``: a summary first (bundles added,
changed and removed; every change that widens access, grouped by what it grants; every raised
quota, budget, replica count or DB connection limit; what Argo CD will prune), then one section
per bundle (label-only churn collapsed into one line, changed objects as YAML diffs, added objects
as their YAML, folded), all under ``limit`` characters: what does not fit is named at the end
("and 480 more bundles: see the build artifact"). ``report.write_full_report`` writes it all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from renderer.gitops.report import (FOLD_LINES, MD_LIMIT, MD_WIDENING_LIMIT, BundleDiff, ObjectDiff, Report, _change_word,
                                    format_json, format_text, headline)

ARTIFACT = "see the build artifact"
GROUP_NAMES = 3  # bundles named per grouped call-out
TAIL_RESERVE = 400  # characters kept free for the closing lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def format_markdown(report: Report, limit: Optional[int] = MD_LIMIT) -> str:
    if report.unchanged:
        return f"**render diff**: {_md(headline(report))}\n" + "".join(f"\n> {_md(n)}\n" for n in report.notes)
    head = [f"### render diff: {_md(headline(report))}", "", _summary_line(report), ""]
    callouts = _callouts(report)
    if callouts:
        head += callouts + [""]
    head_text = "\n".join(head) + "\n"
    if limit is not None and len(head_text) > limit // 2:
        head_text = _cut_lines(head_text, limit // 2, f"> ... the summary goes on: {ARTIFACT}\n")

    table_head = ("| env | tenant | plugin | change | objects added | changed | removed |\n"
                  "|---|---|---|---|---:|---:|---:|\n")
    budget = None if limit is None else limit - len(head_text) - len(table_head) - TAIL_RESERVE
    rows, blocks, used = [], [], 0
    for b in report.bundles:
        row, block = _row(b), "\n".join(_bundle_block(b)) + "\n\n"
        if budget is not None and used + len(row) + len(block) > budget:
            break
        rows.append(row)
        blocks.append(block)
        used += len(row) + len(block)
    more_bundles = len(report.bundles) - len(rows)
    others, more_files = [], 0
    if report.others and not more_bundles:
        for i, o in enumerate(report.others):
            block = "\n".join(_object_lines(o, show_path=True)) + "\n"
            if budget is not None and used + len(block) + 40 > budget:
                more_files = len(report.others) - i
                break
            others.append(block)
            used += len(block)
    elif report.others:
        more_files = len(report.others)

    out = head_text
    if rows:
        out += table_head + "".join(rows) + "\n" + "".join(blocks)
    if others:
        out += "#### Other files\n\n" + "".join(others) + "\n"
    rest = [f"{more_bundles} more bundle(s)"] if more_bundles else []
    rest += [f"{more_files} more file(s)"] if more_files else []
    if rest:
        out += f"**... and {' and '.join(rest)}: {ARTIFACT}** (this comment is cut at {limit:,} characters)\n"
    return out.rstrip("\n") + "\n"


def _cut_lines(text: str, limit: int, tail: str) -> str:
    lines, size = [], len(tail)
    for line in text.splitlines(keepends=True):
        if size + len(line) > limit:
            break
        lines.append(line)
        size += len(line)
    return "".join(lines) + tail + "\n"


def _summary_line(report: Report) -> str:
    s = report.summary()
    parts = [f"{s['added']} added", f"{s['changed']} changed", f"{s['removed']} removed"]
    extra = f"; {len(report.others)} other file(s)" if report.others else ""
    access = [w for w in report.widening if not _what(w).startswith("raised ")]
    raises = len(report.widening) - len(access)
    flags = [f"{len(access)} access widening(s)"] if access else []
    flags += [f"{raises} raised limit(s)"] if raises else []
    flags += [f"{report.pruned} object(s) to prune"] if report.pruned else []
    return f"**Summary:** bundles {', '.join(parts)}{extra}" + "".join(f"; **{f}**" for f in flags)


def _who(w: str) -> str:
    return w.split(": ", 1)[0]


def _what(w: str) -> str:
    return w.split(": ", 1)[1] if ": " in w else w


def _grouped(items: list[str]) -> list[str]:
    """One line per distinct grant or raise, naming the bundles it applies to."""
    groups: dict[str, list[str]] = {}
    for w in items:
        groups.setdefault(_what(w), []).append(_who(w))
    lines = []
    for what, who in groups.items():
        if len(who) == 1:
            lines.append(f"> - `{who[0]}`: {_md(what)}")
        else:
            names = ", ".join(f"`{x}`" for x in who[:GROUP_NAMES])
            more = f" and {len(who) - GROUP_NAMES} more" if len(who) > GROUP_NAMES else ""
            lines.append(f"> - {_md(what)}: {len(who)} bundles ({names}{more})")
    if len(lines) > MD_WIDENING_LIMIT:
        lines = lines[:MD_WIDENING_LIMIT] + [f"> - ... and {len(lines) - MD_WIDENING_LIMIT} more: {ARTIFACT}"]
    return lines


def _callouts(report: Report) -> list[str]:
    blocks: list[list[str]] = []
    for r in report.refusals:
        blocks.append([f"> :no_entry: **`render commit` will refuse this:** {_md(r)}"])
    if report.pruned:
        removed = [b.path for b in report.bundles if b.change == "removed"]
        names = ", ".join(f"`{p}`" for p in removed[:10]) + (f" and {len(removed) - 10} more" if len(removed) > 10 else "")
        tail = f" ({len(removed)} bundle(s) removed: {names})" if removed else ""
        blocks.append([f"> :warning: **{report.pruned} objects will be pruned**{tail}"])
    access = [w for w in report.widening if not _what(w).startswith("raised ")]
    raises = [w for w in report.widening if _what(w).startswith("raised ")]
    if access:
        blocks.append(["> :warning: **Changes that widen access:**", *_grouped(access)])
    if raises:
        blocks.append(["> :warning: **Raised limits (quota, budget, replicas, DB connections; they widen access "
                       "too):**", *_grouped(raises)])
    for n in report.notes:
        blocks.append([f"> :information_source: {_md(n)}"])
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            out.append(">")
        out += block
    return out


def _row(b: BundleDiff) -> str:
    a, c, r = b.counts()
    counts = "- | - | -" if not b.objects and b.meta else f"{a} | {c} | {r}"
    return f"| {_md(b.env)} | {_md(b.tenant)} | {_md(b.plugin)} | {_md(_change_word(b))} | {counts} |\n"


def _bundle_block(b: BundleDiff) -> list[str]:
    out = [f"#### `{b.path}` {_md(_change_word(b))}", ""]
    churn = [o for o in b.objects if o.change == "changed" and o.label_only]
    if churn:
        changes = sorted({c for o in churn for c in o.label_only})
        names = ", ".join(f"`{o.label}`" for o in churn)
        out.append(f"- only labels changed on {len(churn)} object(s) ({_md('; '.join(changes))}): {names}")
    for o in b.objects:
        if not (o.change == "changed" and o.label_only):
            out.extend(_object_lines(o))
    if b.objects and [m for m in b.meta if m != "kustomization.yaml"]:
        keys = ", ".join(m for m in b.meta if m != "kustomization.yaml")
        out.append(f"- bundle.json: {_md(keys)}")
    return out


def _fenced(text: str, lang: str) -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"{fence}{lang}", text.rstrip("\n"), fence]


def _object_lines(o: ObjectDiff, show_path: bool = False) -> list[str]:
    title = f"`{o.file}`" + (f" (`{o.label}`)" if o.kind else "") if show_path else f"`{o.label}`"
    head = f"- {o.change} {title}"
    if o.change == "added" and o.content:
        n = o.content.count("\n")
        return [head, "", f"<details><summary>{n} lines of YAML</summary>", "", *_fenced(o.content, "yaml"), "",
                "</details>", ""]
    if not o.diff:
        return [head]
    body = _fenced(o.diff, "diff")
    n = o.diff.count("\n")
    if n > FOLD_LINES:
        return [head, "", f"<details><summary>{n} diff lines</summary>", "", *body, "", "</details>", ""]
    return [head, "", *body, ""]


def write_full_report(report: Report, path: "str | os.PathLike[str]") -> Path:
    """Writes the whole report, nothing cut, to ``path`` (the build artifact the capped comment points to):
    JSON for ``*.json``, markdown for ``*.md``, text otherwise. Written to a temporary file beside it, then
    renamed, so a reader never sees half a report."""
    target = Path(path)
    suffix = target.suffix.lower()
    text = format_json(report) if suffix == ".json" else \
        format_markdown(report, limit=None) if suffix in (".md", ".markdown") else format_text(report)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
