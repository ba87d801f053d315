#!/usr/bin/env python3
"""The shape of the product crate, checked: no import circle between its files, no file over
400 lines and no function over 80 (generated code and test modules aside), and a README layout
table that names every module of src/ and every workspace member, and nothing that is gone.

    python3 scripts/check-structure.py            # the product crate (src/)
    python3 scripts/check-structure.py --graph    # also print every file's imports

Imports are read as text: `use crate::…`, `use super::…`, `use self::…` (with `{…}` groups) and
`crate::a::b` paths written in the code. A path names the deepest file that exists for it
(`crate::rules::fqdn::FqdnPattern` is src/rules/fqdn.rs). A file's own `mod x;` declarations
are not imports. Everything after a `#[cfg(test)]` line is a test module and left out, and so
are test modules in files of their own (`tests.rs`, `*_tests.rs`). Exit
status 1 when a rule is broken, with one line per finding.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")
MAX_FILE = 400
MAX_FN = 80
# Files that are generated or include generated code only.
GENERATED = {"src/api.rs"}


def rel(p):
    return os.path.relpath(p, ROOT)


def production_lines(path):
    """The file's lines up to its first `#[cfg(test)]`."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("#[cfg(test)]"):
                break
            out.append(line.rstrip("\n"))
    return out


def module_of(path):
    """`src/rules/fqdn.rs` -> ["rules", "fqdn"]; `src/dns/mod.rs` -> ["dns"]."""
    parts = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


REEXPORTS = {}


def defining_file(parts, depth=0):
    """The file that defines what a module path names: the deepest existing file, followed
    through `pub use` re-exports of a `mod.rs`."""
    f = file_for(parts)
    if f is None or depth > 8:
        return f
    n = len(module_of(f))
    if len(parts) > n:
        target = REEXPORTS.get(os.path.abspath(f), {}).get(parts[n])
        if target is not None:
            m = resolve(target, module_of(f))
            if m is not None:
                g = defining_file(m + parts[n + 1 :], depth + 1)
                if g is not None:
                    return g
    return f


def file_for(parts):
    """The deepest existing file for a module path (or None)."""
    for n in range(len(parts), -1, -1):
        base = os.path.join(SRC, *parts[:n]) if n else SRC
        for cand in (base + ".rs", os.path.join(base, "mod.rs")) if n else (
            os.path.join(SRC, "lib.rs"),
        ):
            if os.path.isfile(cand):
                return cand
    return None


def strip_comments_and_strings(text):
    """The code with comments removed and string and char literals emptied (newlines kept, so
    line numbers stay). A small scanner: `//` inside a string is not a comment."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1f}') or a lifetime ('a): keep lifetimes.
            m = re.match(r"'(?:\\[^']*|[^'\\])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tree(text):
    """A `use` tree without whitespace, `a as b` written `a@b`."""
    return re.sub(r"\s+as\s+", "@", text).replace("\n", " ").replace(" ", "")


def children(text):
    """The modules a file declares (`mod x;`, `pub mod x;`)."""
    return set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, flags=re.M))


def use_paths(text):
    """Every module path a file names: expanded `use` trees, inline `crate::`/`super::` paths,
    and paths into the file's own child modules (`load::x`), as `self::load::x`."""
    kids = children(text)
    heads = ["crate", "super", "self"] + sorted(kids)
    alt = "|".join(heads)
    paths = []
    for m in re.finditer(r"\buse\s+((?:" + alt + r")\b[^;]*);", text):
        paths.extend(expand(tree(m.group(1))))
    for m in re.finditer(r"(?<![\w:])((?:" + alt + r")(?:::\w+)+)", text):
        paths.append(m.group(1).split("::"))
    return [["self"] + p if p[0] in kids else p for p in paths]


def reexports(text):
    """`pub use child::{A, B as C}` -> {"A": [self, child, A], "C": [self, child, B]}."""
    kids = children(text)
    out = {}
    for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);", text):
        for p in expand(tree(m.group(1))):
            if not p or p[-1] == "*":
                continue
            name, _, alias = p[-1].partition("@")
            path = p[:-1] + [name]
            if path[0] in kids:
                path = ["self"] + path
            out[alias or name] = path
    return out


def expand(tree):
    """`crate::a::{b, c::d}` -> [[crate, a, b], [crate, a, c, d]]."""
    i = tree.find("{")
    if i < 0:
        return [tree.split("::")]
    prefix = tree[:i].rstrip(":")
    inner = tree[i + 1 : tree.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for it in filter(None, items):
        if it == "self":
            out.append(prefix.split("::"))
        else:
            out.extend(expand(prefix + "::" + it))
    return out


def resolve(path, here):
    """A `crate::`/`super::`/`self::` path, seen from module `here`, as a module path."""
    mod = list(here)
    head, rest = path[0], path[1:]
    if head == "crate":
        mod = []
    elif head == "super":
        mod = mod[:-1]
        while rest and rest[0] == "super":
            mod, rest = mod[:-1], rest[1:]
    elif head != "self":
        return None
    return mod + [p.split("@")[0] for p in rest if p not in ("*",)]


def functions(lines):
    """(name, first line, length) of every `fn` with a body, by brace counting."""
    text = [strip_comments_and_strings(l) for l in lines]
    out = []
    for i, l in enumerate(text):
        m = re.search(r"\bfn\s+(\w+)", l)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(text)):
            seg = text[j] if j > i else text[j][m.start():]
            if not started and ";" in seg and "{" not in seg.split(";")[0]:
                break  # a declaration without a body
            for ch in seg:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
            if started and depth <= 0:
                out.append((m.group(1), i + 1, j - i + 1))
                break
    return out


def layout_problems():
    """The README's layout table against the tree: every module of `src/` (file or directory,
    tests aside) and every workspace member is named in it, and every path it names exists."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = readme.find("## Layout")
    if start < 0:
        return ["README.md: no \"## Layout\" section"]
    block_start = readme.find("```", start)
    block_end = readme.find("```", block_start + 3)
    block = readme[block_start + 3:block_end]
    tokens = set(re.findall(r"[A-Za-z0-9_.\-/]+", block))
    problems = []
    for name in sorted(os.listdir(SRC)):
        full = os.path.join(SRC, name)
        if name in ("tests.rs",) or name.endswith("_tests.rs"):
            continue
        if os.path.isdir(full):
            wanted = [f"src/{name}/", f"{name}/"]
        elif name.endswith(".rs"):
            wanted = [f"src/{name}", name]
        else:
            continue
        if not tokens & set(wanted):
            problems.append(f"README.md layout: src/{name} is not named")
    manifest = open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8").read()
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", manifest, re.M)
    for m in re.findall(r'"([^"]+)"', members.group(1) if members else ""):
        if m != "." and f"{m}/" not in tokens:
            problems.append(f"README.md layout: workspace member {m}/ is not named")
    for t in sorted(tokens):
        if "/" in t and not t.startswith("/") and not t.startswith("-"):
            if not os.path.exists(os.path.join(ROOT, t.rstrip("/"))):
                if t.split("/")[0] in ("src", "tests", "bench", "fuzz", "testkit", "deploy",
                                       "proto", "scripts", "dashboards"):
                    problems.append(f"README.md layout: {t} does not exist")
    return problems


def main():
    files = []
    for d, _, names in os.walk(SRC):
        for n in sorted(names):
            # Test modules in files of their own (`mod tests;` under #[cfg(test)]).
            if n.endswith(".rs") and n != "tests.rs" and not n.endswith("_tests.rs"):
                files.append(os.path.join(d, n))
    files.sort()
    for f in files:
        text = strip_comments_and_strings("\n".join(production_lines(f)))
        REEXPORTS[os.path.abspath(f)] = reexports(text)
    problems = []
    graph = {}
    for f in files:
        lines = production_lines(f)
        r = rel(f)
        if r not in GENERATED:
            if len(lines) > MAX_FILE:
                problems.append(f"{r}: {len(lines)} lines (at most {MAX_FILE})")
            for name, line, n in functions(lines):
                if n > MAX_FN:
                    problems.append(f"{r}:{line}: fn {name} has {n} lines (at most {MAX_FN})")
        text = strip_comments_and_strings("\n".join(lines))
        here = module_of(f)
        deps = set()
        for p in use_paths(text):
            m = resolve(p, here)
            if m is None:
                continue
            target = defining_file(m)
            if target and os.path.abspath(target) != os.path.abspath(f):
                deps.add(os.path.abspath(target))
        graph[os.path.abspath(f)] = deps
    # Circles: strongly connected components of more than one file.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    for comp in comps:
        names = [rel(c) for c in comp]
        ties = [
            f"{rel(a)} -> {rel(b)}" for a in comp for b in sorted(graph[a]) if b in comp
        ]
        problems.append(f"import circle: {', '.join(names)} ({'; '.join(ties)})")
    problems.extend(layout_problems())
    if "--graph" in sys.argv:
        for v in sorted(graph):
            print(f"{rel(v)} -> {', '.join(sorted(rel(d) for d in graph[v])) or '-'}")
    for p in problems:
        print(p)
    print(
        f"structure: {len(files)} files, {sum(len(g) for g in graph.values())} imports, "
        f"{len(comps)} circle(s), {len(problems)} finding(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
