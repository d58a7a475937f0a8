#!/usr/bin/env python3
"""Structure checks for one crate's library source, test code excluded.

  rust-structure.py modules <crate-dir>   module import graph; exits 1 on a cycle
  rust-structure.py sizes <crate-dir> [N] file lengths and the N longest functions
                                          (from `fn` to its closing brace)

Test code is `#[cfg(test)]` items and the files of `#[cfg(test)] mod x;`.
An edge A -> B means A names something in B through a `crate::`, `super::`,
`self::` or child-module path; a parent declaring `mod child;` is not an edge by
itself, but a parent that uses or re-exports from the child is. A cycle is a
strongly connected component with more than one module.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src):
    """Source with comments and string/char literal contents blanked, newlines kept."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif re.match(r'b?r#*"', src[i:i + 40]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', src[i:])
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r"[^\n]", " ", src[i + 2:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('"' + re.sub(r"[^\n]", " ", src[i + 1:j]) + '"')
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", src[i:i + 12])
            if m:
                out.append("' '" + " " * (m.end() - 3))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(s, open_at):
    depth = 0
    for j in range(open_at, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(s) - 1


def item_end(s, start):
    """End of the item starting at `start`: its `;` or the brace closing its body."""
    depth = 0
    for j in range(start, len(s)):
        ch = s[j]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ";" and depth == 0:
            return j
        elif ch == "{" and depth == 0:
            return matching_brace(s, j)
    return len(s) - 1


def blank_tests(s):
    """Blanks `#[cfg(test)]` items; returns the text and the test-only `mod x;` names."""
    test_mods = set()
    while True:
        m = re.search(r"#\[cfg\(test\)\]", s)
        if not m:
            return s, test_mods
        rest = s[m.end():]
        start = m.end() + len(rest) - len(rest.lstrip())
        decl = re.match(r"(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", s[start:])
        if decl:
            test_mods.add(decl.group(3))
        end = item_end(s, start)
        s = s[:m.start()] + re.sub(r"[^\n]", " ", s[m.start():end + 1]) + s[end + 1:]


class Module:
    def __init__(self, path, file, text):
        self.path, self.file, self.text = path, file, text
        self.children = {}


def load(crate_dir):
    root_file = os.path.join(crate_dir, "src", "lib.rs")
    modules = {}

    def visit(path, file, dir_for_children):
        with open(file) as f:
            text, test_mods = blank_tests(strip(f.read()))
        mod = Module(path, file, text)
        modules[path] = mod
        for m in re.finditer(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text, re.M):
            name = m.group(3)
            if name in test_mods:
                continue
            for candidate, child_dir in (
                (os.path.join(dir_for_children, name + ".rs"), os.path.join(dir_for_children, name)),
                (os.path.join(dir_for_children, name, "mod.rs"), os.path.join(dir_for_children, name)),
            ):
                if os.path.exists(candidate):
                    mod.children[name] = path + (name,)
                    visit(path + (name,), candidate, child_dir)
                    break
        return mod

    visit((), root_file, os.path.dirname(root_file))
    return modules


def expand(prefix, body):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (only the module part matters)."""
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = re.sub(r"\s+", "", p)
        if not p:
            continue
        g = re.match(r"((?:" + IDENT + r"::)*)\{(.*)\}$", p)
        if g:
            out += expand(prefix + [x for x in g.group(1).split("::") if x], g.group(2))
        else:
            out.append(prefix + [x for x in re.split(r"::", p.split(" as ")[0]) if x])
    return out


def references(mod):
    """Paths named by `mod`, each a list of segments starting with crate/super/self/child."""
    # `pub(in path)` restricts visibility; it names no dependency.
    text = re.sub(r"pub\s*\(\s*in\s+[^)]*\)", "pub", mod.text)
    heads = ["crate", "super", "self"] + list(mod.children)
    pat = re.compile(r"(?<![A-Za-z0-9_:])((?:" + "|".join(map(re.escape, heads)) + r")(?:\s*::\s*" + IDENT + r")*)\s*::\s*(\{)?")
    refs = []
    for m in pat.finditer(text):
        segs = [x.strip() for x in m.group(1).split("::")]
        if m.group(2):
            end = matching_brace(text, m.end() - 1)
            refs += expand(segs, text[m.end():end])
        else:
            after = re.match(r"\s*(" + IDENT + r")", text[m.end():])
            refs.append(segs + ([after.group(1)] if after else []))
    return refs


def resolve(modules, current, segs):
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = current
        while segs and segs[0] in ("super", "self"):
            base = base[:-1] if segs[0] == "super" else base
            segs = segs[1:]
        rest = segs
    else:
        base, rest = current, segs
    target = base
    for s in rest:
        if s in modules[target].children:
            target = modules[target].children[s]
        else:
            break
    return target


def name(path):
    return "::".join(path) or "crate"


def graph(modules):
    edges = {p: set() for p in modules}
    for p, mod in modules.items():
        for segs in references(mod):
            t = resolve(modules, p, segs)
            if t != p:
                edges[p].add(t)
    return edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def cmd_modules(crate_dir):
    modules = load(crate_dir)
    edges = graph(modules)
    for p in sorted(edges):
        print(f"{name(p)} -> {', '.join(sorted(name(t) for t in edges[p])) or '(none)'}")
    cycles = [c for c in sccs(edges) if len(c) > 1]
    print()
    if not cycles:
        print(f"no module cycles ({len(modules)} modules)")
        return 0
    for c in cycles:
        print("cycle: " + " <-> ".join(sorted(name(p) for p in c)))
    return 1


def functions(text):
    """(name, first line, line count) of every fn with a body in `text`."""
    out = []
    for m in re.finditer(r"\bfn\s+(" + IDENT + r")", text):
        depth, j = 0, m.end()
        while j < len(text):
            ch = text[j]
            if ch in "([<":
                depth += 1
            elif ch in ")]>" and not (ch == ">" and text[j - 1] == "-"):
                depth -= 1
            elif ch == ";" and depth <= 0:
                break
            elif ch == "{" and depth <= 0:
                end = matching_brace(text, j)
                first = text.count("\n", 0, m.start()) + 1
                last = text.count("\n", 0, end) + 1
                out.append((m.group(1), first, last - first + 1))
                break
            j += 1
    return out


def cmd_sizes(crate_dir, top):
    modules = load(crate_dir)
    rows, fns = [], []
    for mod in modules.values():
        with open(mod.file) as f:
            total = f.read().count("\n")
        code = mod.text.count("\n") - len(re.findall(r"^\s*$", mod.text, re.M))
        rel = os.path.relpath(mod.file, crate_dir)
        rows.append((total, code, rel))
        fns += [(n, rel, line, name) for name, line, n in functions(mod.text)]
    print("lines   code  file  (code: lines outside tests, comments and blank lines)")
    for total, code, rel in sorted(rows, reverse=True):
        print(f"{total:5}  {code:5}  {rel}")
    print(f"\nlongest functions (test code excluded):")
    for n, rel, line, fname in sorted(fns, reverse=True)[:top]:
        print(f"{n:5}  {rel}:{line}  {fname}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("modules", "sizes"):
        sys.exit(__doc__)
    if sys.argv[1] == "modules":
        sys.exit(cmd_modules(sys.argv[2]))
    sys.exit(cmd_sizes(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20))
