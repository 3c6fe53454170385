#!/usr/bin/env python3
"""The `many` dataset of Scripts/bench: a large tree of small files (metadata-bound backups).

Deterministic like ../shared/bench/benchdata.py (whose content factory it reuses): the same file
count gives a byte-identical tree with the same mtimes on every run.

  gen OUT --files N     N small files (default 200,000) in N/40 folders (at least 5,000 for the
                        default count) at depths 2-5: mostly 0.2-8 KB of text, code and JSON,
                        about 5 % random bytes (already-compressed media), 2 % up to 32 KB
  mutate DIR            the small change: touch 0.5 % of the files (new mtime, same bytes), append a
                        line to another 0.5 %, add 100 new files (half of them in a new folder)
  version               the generator version (part of the dataset's stamp)
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True     # no __pycache__ beside benchdata.py (../shared is read-only)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
sys.path.insert(0, os.environ.get("BENCH_SHARED", "/work/shared/bench"))
import benchdata  # noqa: E402  (found through sys.path above)

MANY_VERSION = "2"              # bump when the generated tree changes
SEED = 20251126
TOP_DIRS = ["src", "lib", "docs", "tests", "config", "vendor", "assets", "scripts", "data", "tools",
            "services", "packages", "web", "api", "infra", "notebooks"]
SUB_DIRS = ["core", "util", "net", "ui", "model", "internal", "cmd", "pkg", "common", "handlers",
            "views", "fixtures", "v1", "v2", "legacy", "generated", "include", "impl", "spec", "schemas"]
GROWTH = {1: 1.0, 2: 1.0, 3: 0.45, 4: 0.2}     # how readily a folder at depth d gets a subfolder
KINDS = [  # (weight, kind, extensions)
    (40, "code", [".swift", ".py", ".c", ".h", ".go", ".js", ".ts", ".rs"]),
    (25, "text", [".md", ".txt", ".rst", ".csv"]),
    (30, "json", [".json", ".yaml", ".lock"]),
    (5, "bytes", [".png", ".gz", ".bin", ".woff2"]),
]


def pick_size(r):
    """Mostly 0.2-8 KB (median about 1.1 KB); 2 % of files 8-32 KB."""
    if r.random() < 0.02:
        return r.randint(8192, 32768)
    return max(200, min(8192, int(r.lognormvariate(7.0, 0.9))))


def content(g, kind, size, label):
    r = g.r
    if kind == "bytes":
        return g.randbytes(size)
    if kind == "code":
        head = f"// {label} — generated {r.getrandbits(48):012x}\n".encode()
        return head + g.code(max(0, size - len(head)))
    if kind == "json":
        return g.json(size)
    return f"# {label}\n\n".encode() + g.prose(max(0, size - len(label) - 4))


def make_dirs(g, n_dirs):
    """n_dirs folders (relative paths) in a tree of depth 1-5; files go only to depth >= 2."""
    r = g.r
    dirs = [(name, 1) for name in TOP_DIRS]
    names = set(d for d, _ in dirs)
    while len(dirs) < n_dirs:
        parent, depth = dirs[r.randrange(len(dirs))]
        if depth >= 5 or r.random() > GROWTH[depth]:
            continue
        base = r.choice(SUB_DIRS) if r.random() < 0.4 else r.choice(g.words)
        path = f"{parent}/{base}"
        if path in names:
            path = f"{parent}/{base}{r.randint(2, 99)}"
            if path in names:
                continue
        names.add(path)
        dirs.append((path, depth + 1))
    return [d for d, depth in dirs if depth >= 2], [d for d, _ in dirs]


def gen_many(out, n_files):
    g = benchdata.Gen(SEED)
    r = g.r
    n_dirs = max(50, n_files // 40 + len(TOP_DIRS))
    leaf_dirs, all_dirs = make_dirs(g, n_dirs)
    os.makedirs(out)
    for d in all_dirs:
        os.makedirs(os.path.join(out, d), exist_ok=True)
    weights = [w for w, _, _ in KINDS]
    # Folders get files in runs (a project folder holds many files), not uniformly.
    i = 0
    while i < n_files:
        d = r.choice(leaf_dirs)
        run = min(n_files - i, max(1, int(r.expovariate(1 / 40))))
        for _ in range(run):
            _, kind, exts = r.choices(KINDS, weights=weights)[0]
            name = f"{r.choice(g.words)}_{i}{r.choice(exts)}"
            size = pick_size(r)
            data = content(g, kind, size, f"{d}/{name}")
            path = os.path.join(out, d, name)
            with open(path, "wb") as f:
                f.write(data)
            mt = benchdata.BASE_MTIME - r.randint(0, 3 * 365 * 86400)
            os.utime(path, (mt, mt))
            i += 1
    benchdata.fix_dir_mtimes(out)


def mutate_many(root):
    """Touch every 200th file, append to every 200th (offset 100), add 100 files."""
    g = benchdata.Gen(778)
    r = g.r
    files = sorted(benchdata.walk_files(root))
    picked = files[::100]
    when = benchdata.BASE_MTIME + 86400
    touched = appended = 0
    for k, p in enumerate(picked):
        if k % 2 == 0:
            touched += 1
        else:
            with open(p, "ab") as f:
                f.write(b"\nappended by the benchmark: " + g.prose(120) + b"\n")
            appended += 1
        os.utime(p, (when, when))
    dirs = sorted({os.path.dirname(p) for p in files})
    new_dir = os.path.join(root, "src", "new-feature", "batch")
    os.makedirs(new_dir, exist_ok=True)
    for i in range(100):
        d = new_dir if i % 2 else r.choice(dirs)
        path = os.path.join(d, f"added_{i}.swift")
        with open(path, "wb") as f:
            f.write(content(g, "code", pick_size(r), f"added {i}"))
        os.utime(path, (when, when))
    print(f"touched={touched} appended={appended} added=100")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("gen"); p.add_argument("out"); p.add_argument("--files", type=int, default=200_000)
    p = sub.add_parser("mutate"); p.add_argument("dir")
    sub.add_parser("version")
    a = ap.parse_args()
    if a.cmd == "gen":
        gen_many(a.out, a.files)
    elif a.cmd == "mutate":
        mutate_many(a.dir)
    else:
        print(f"{MANY_VERSION}.{benchdata.GENERATOR_VERSION}")


if __name__ == "__main__":
    main()
