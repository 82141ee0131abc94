#!/usr/bin/env python3
"""tools/check_links.py: every relative link in the given Markdown files resolves.

    tools/check_links.py docs/claims.md [more.md ...]

For each [text](target) and ![image](target) outside code fences, with a target that is not a URL:
  - the path is relative, and the file (or directory) exists, relative to the Markdown file;
  - #Lnn or #Lnn-Lmm: the file has at least that many lines;
  - any other #anchor: the file is Markdown and one of its headings has that GitHub-style slug
    (lower case; characters other than letters, digits, spaces, '-' and '_' dropped; spaces to
    '-'; the n-th repeat of a slug gets '-n');
  - a link to a source file whose text is one inline code span, [`symbol`](path): the symbol
    occurs verbatim in that file. Such links name what they point at instead of a line number,
    so they survive edits, and the check still fails when the symbol is renamed or removed.
Exit status 1 with one line per broken link; 0 otherwise. Python 3 standard library only.
"""

import os
import re
import sys

LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text):
    """The lines of a Markdown text with fenced code blanked out (line numbers kept)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return out


def slug(heading):
    """GitHub's anchor for a heading's text."""
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    s = s.replace("`", "").replace("*", "").strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)  # \w: Unicode letters, digits and '_'
    return s.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    with open(path, encoding="utf-8") as f:
        for line in prose(f.read()):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def check(md):
    errors, count = [], 0
    here = os.path.dirname(os.path.abspath(md))
    with open(md, encoding="utf-8") as f:
        lines = prose(f.read())
    for lineno, line in enumerate(lines, 1):
        for m in LINK.finditer(line):
            text, target = m.group(1), m.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            count += 1
            where = f"{md}:{lineno}: [{text}]({target})"
            path, _, anchor = target.partition("#")
            if path.startswith("/"):  # on GitHub that is the site's root, not this repository's
                errors.append(f"{where}: absolute path: link relative to the Markdown file")
                continue
            full = os.path.normpath(os.path.join(here, path)) if path else os.path.abspath(md)
            if not os.path.exists(full):
                errors.append(f"{where}: no such file {os.path.relpath(full)}")
                continue
            if anchor:
                lm = re.fullmatch(r"L(\d+)(?:-L(\d+))?", anchor)
                if lm:
                    with open(full, encoding="utf-8", errors="replace") as f:
                        n = sum(1 for _ in f)
                    last = int(lm.group(2) or lm.group(1))
                    if last > n or int(lm.group(1)) < 1:
                        errors.append(f"{where}: line {last} is past the end ({n} lines)")
                elif not full.endswith(".md"):
                    errors.append(f"{where}: #{anchor} in a file that is not Markdown")
                elif anchor not in anchors(full):
                    errors.append(f"{where}: no heading with the anchor #{anchor}")
            sym = re.fullmatch(r"`([^`]+)`", text.strip())
            if sym and os.path.isfile(full) and not full.endswith(".md"):
                with open(full, encoding="utf-8", errors="replace") as f:
                    if sym.group(1) not in f.read():
                        errors.append(f"{where}: `{sym.group(1)}` does not occur in {os.path.relpath(full)}")
    return errors, count


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    errors, total = [], 0
    for md in argv[1:]:
        e, n = check(md)
        errors += e
        total += n
    for e in errors:
        print(e)
    print(f"check_links: {total} links, {len(errors)} broken")
    return 1 if errors or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
