#!/usr/bin/env python3
"""bench.py — Polyad Backup beside restic and borg: same data, same run, same method.

Run through Scripts/bench (which builds `polyad` and sets POLYAD_BIN); this file does the measuring.
The phases, units and measurement method are those of ../shared/bench/anchors.sh (the reference
benchmark), applied to every tool and to three datasets:

  src     Swift package sources, changed to the next release tags       (benchdata.py gen-src / sync)
  mixed   a home directory: documents, code, mail, media, big files      (benchdata.py gen-mixed / mutate-mixed)
  many    >= 200,000 small files in >= 5,000 folders                     (benchmany.py gen / mutate)

Phases per tool and dataset: backup-1st, backup-nochange, backup-changed, restore (verified with
benchdata.py compare), mount-ls-lR, mount-read-all, check-read-all; for Polyad also incoming-cp and
incoming-drop-commit (cp -a of the dataset into /incoming of a new store until its snapshot appears, the snapshot
restored and compared; again with mount.sync_on_close false: the -nosync rows) and, once, incoming-dd and disk-dd (dd through /incoming and dd to the same disk,
interleaved, medians of five). Before every phase the page cache
is dropped. Wall time is measured around /usr/bin/time -v, which gives peak RSS and CPU seconds
(for mount rows: the FUSE daemon over the mount's life).

Environment:
  BENCH_DIR         scratch directory (default /tmp/polyad-bench-full): data, work, repos, logs, bench.tsv
  BENCH_SCALE       size factor of src and mixed, as anchors.sh (default 2)
  BENCH_MANY_FILES  file count of `many` (default 200000)
  BENCH_DATASETS    default "src mixed many"
  BENCH_TOOLS       default "restic borg-lz4 borg-zlib6 polyad-6 polyad-9"
  BENCH_PHYSICAL    1 (default) to add the machine's limits (openssl, zlib, disk), 0 to skip
  BENCH_TIMEOUT     seconds any one measured command may take before it is killed (default 3600)
  BENCH_PASSPHRASE  repository passphrase handed to the tools through their environment variables
  POLYAD_BIN        folder holding polyad (and polyadfs once it exists); needed for polyad-* rows

Output: a Markdown table of all rows, then a table of Polyad's ratios against restic and borg; the rows
as TSV in $BENCH_DIR/bench.tsv (the columns of anchors.tsv), the ratios in $BENCH_DIR/ratios.tsv;
progress on stderr, the tools' output in $BENCH_DIR/logs/. Exit status 1 if a restore did not match
its source or a tool failed, 130 if interrupted.
"""

import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("BENCH_SHARED") or os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
DATA_PY = os.path.join(SHARED, "benchdata.py")
MANY_PY = os.path.join(HERE, "benchmany.py")
PY = os.environ.get("PYTHON") or sys.executable or "python3"



def env_number(name, default, kind):
    """A numeric environment knob, or a clear message and exit status 2."""
    raw = os.environ.get(name) or str(default)
    try:
        value = kind(raw)
        if value <= 0:
            raise ValueError
        return value
    except ValueError:
        print(f"[bench] ERROR: {name} must be a positive {kind.__name__}, not {raw!r}", file=sys.stderr)
        sys.exit(2)


BENCH_DIR = os.environ.get("BENCH_DIR") or "/tmp/polyad-bench-full"
BENCH_SCALE = os.environ.get("BENCH_SCALE") or "2"          # a string: it goes into stamps and commands
BENCH_MANY_FILES = env_number("BENCH_MANY_FILES", 200_000, int)
BENCH_DATASETS = (os.environ.get("BENCH_DATASETS") or "src mixed many").split()
BENCH_TOOLS = (os.environ.get("BENCH_TOOLS") or "restic borg-lz4 borg-zlib6 polyad-6 polyad-9").split()
BENCH_PHYSICAL = (os.environ.get("BENCH_PHYSICAL") or "1") == "1"
BENCH_TIMEOUT = env_number("BENCH_TIMEOUT", 3600, float)
PASSPHRASE = os.environ.get("BENCH_PASSPHRASE") or "polyad-bench-passphrase"
POLYAD_BIN = os.environ.get("POLYAD_BIN") or ""

DATA = os.path.join(BENCH_DIR, "data")          # pristine datasets (kept between runs while unchanged)
WORK = os.path.join(BENCH_DIR, "work")          # the copy each tool backs up and changes
REPOS = os.path.join(BENCH_DIR, "repos")
RESTORE = os.path.join(BENCH_DIR, "restore")
MNT = os.path.join(BENCH_DIR, "mnt")
LOGS = os.path.join(BENCH_DIR, "logs")
HOME = os.path.join(BENCH_DIR, "home")
TSV = os.path.join(BENCH_DIR, "bench.tsv")
RATIOS_TSV = os.path.join(BENCH_DIR, "ratios.tsv")
TIME = "/usr/bin/time"

# Read every regular file below $0 once, in directory order; prints the byte count (as anchors.sh).
READ_ALL = 'set -o pipefail; cd "$0" && find . -type f -print0 | xargs -0 cat -- | wc -c'
# One large, compressible file read sequentially through the mount (issue 3's single-file target), and its
# single-core decode limit: zlib inflate of level-6 1 MiB blocks plus AES-256-GCM over the compressed bytes.
LARGE_FILE = {"mixed": "big/server.log"}
READ_LARGE = 'set -o pipefail; cat "$0/$1" | wc -c'

# /incoming (issue 8): copy the dataset in with cp -a, then wait until the commit has made it a snapshot.
# Prints "<seconds until cp returned> <seconds until committed> <snapshot id>"; $1 dataset, $2 mount point.
DROP_AND_COMMIT = r"""
import json, os, subprocess, sys, time
src, mnt = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
subprocess.run(["cp", "-a", src, mnt + "/incoming/"], check=True)
copied = time.perf_counter() - t0
while True:
    with open(mnt + "/.polyad/status.json") as f:
        s = json.load(f)
    if s.get("last_error"):
        sys.exit("commit failed: " + s["last_error"])
    if s.get("last_commit_snapshot") and s.get("pending_files") == 0 and not s.get("committing"):
        break
    time.sleep(0.02)
print(f"{copied:.3f} {time.perf_counter() - t0:.3f} {s['last_commit_snapshot']}")
"""
INCOMING_SETTLE = 1         # mount.settle_seconds for the drop-and-commit phase

COLUMNS = ["tool", "setting", "dataset", "phase", "seconds", "MB_per_s", "peak_rss_MiB", "cpu_s",
           "logical_bytes", "repo_bytes", "delta_repo_bytes", "note"]
ALL_TOOLS = ["restic", "borg-lz4", "borg-zlib6", "polyad-6", "polyad-9"]
ALL_DATASETS = ["src", "mixed", "many"]


class BenchError(Exception):
    """A failed step: the message says what failed and where its log is."""


class Interrupted(Exception):
    """SIGINT or SIGTERM."""


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_s(x):
    return f"{x:.2f}"


def mbps(n, s):
    return f"{n / 1e6 / s:.1f}" if s > 0 else "-"


# ------------------------------------------------------------------ processes

class Procs:
    """The process groups this script started (each child gets its own session, so a hung tool can be
    ended as a whole: /usr/bin/time, the tool and its helpers). Only these are ever signalled."""
    current = None      # the measured command running now
    mount = None        # the FUSE daemon (under /usr/bin/time) while a mount is up
    drop_warned = False


def _killpg(proc, sig=signal.SIGTERM):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _end_group(proc):
    _killpg(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _killpg(proc, signal.SIGKILL)
        proc.wait()


def _wait_group(proc, timeout):
    """Wait for proc with a blocking waitpid (Popen.wait with a timeout polls every 50 ms, which would
    quantize the wall time); a timer ends the process group after `timeout` seconds. Returns (exit
    status, timed out); on an interrupt ends the group and re-raises."""
    expired = threading.Event()

    def expire():
        expired.set()
        _killpg(proc, signal.SIGTERM)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        rc = proc.wait()
    except BaseException:
        _end_group(proc)
        raise
    finally:
        timer.cancel()
    return rc, expired.is_set()


class Timed:
    """Result of one measured command: wall seconds, peak RSS (MiB), CPU seconds, log path."""

    def __init__(self, wall, rss, cpu, log_path):
        self.wall, self.rss, self.cpu, self.log = wall, rss, cpu, log_path

    def last_line(self):
        with open(self.log, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""


def parse_time_v(path):
    rss, cpu = "-", 0.0
    try:
        with open(path) as f:
            for line in f:
                key, _, val = line.strip().rpartition(": ")
                if key == "Maximum resident set size (kbytes)":
                    rss = f"{int(val) / 1024:.0f}"
                elif key in ("User time (seconds)", "System time (seconds)"):
                    cpu += float(val)
    except (OSError, ValueError):
        return "-", "-"
    return rss, f"{cpu:.2f}"


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run_timed(name, cmd, cwd=None, ok_rc=(0,), env=None):
    """Run cmd under /usr/bin/time -v (output to logs/NAME.log); wall time measured around it."""
    log_path, time_path = os.path.join(LOGS, f"{name}.log"), os.path.join(LOGS, f"{name}.time")
    full_env = dict(os.environ, **(env or {}))
    with open(log_path, "wb") as out:
        t0 = time.perf_counter_ns()
        try:
            proc = subprocess.Popen([TIME, "-v", "-o", time_path, *cmd], cwd=cwd, env=full_env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as e:
            raise BenchError(f"{name}: cannot start {cmd[0]}: {e}") from e
        Procs.current = proc
        try:
            rc, expired = _wait_group(proc, BENCH_TIMEOUT)
        finally:
            Procs.current = None
        t1 = time.perf_counter_ns()
    if expired:                 # the whole group got SIGTERM when the timer fired
        raise BenchError(f"{name}: '{shlex.join(cmd)}' still running after {BENCH_TIMEOUT:g} s "
                         f"(BENCH_TIMEOUT); ended it (log: {log_path})")
    rss, cpu = parse_time_v(time_path)
    if rc not in ok_rc:
        print(tail(log_path), file=sys.stderr)
        raise BenchError(f"{name}: '{shlex.join(cmd)}' exited {rc} (log: {log_path})")
    return Timed((t1 - t0) / 1e9, rss, cpu, log_path)


def run(cmd, log_name=None, env=None, check=True, cwd=None):
    """An unmeasured helper command; returns its stdout (stderr to logs/LOG_NAME.log or to ours)."""
    err = open(os.path.join(LOGS, f"{log_name}.log"), "ab") if log_name else None
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ, **(env or {})),
                           stdin=subprocess.DEVNULL, cwd=cwd)
    finally:
        if err:
            err.close()
    if check and p.returncode != 0:
        where = f" (log: {LOGS}/{log_name}.log)" if log_name else ""
        raise BenchError(f"'{shlex.join(cmd)}' exited {p.returncode}{where}")
    return p.stdout.decode(errors="replace")


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        if not Procs.drop_warned:
            log(f"WARNING: cannot drop the page cache ({e}); reads are not cold (run as root)")
            Procs.drop_warned = True


def du_b(path):
    return int(run(["du", "-sb", path]).split()[0])


def stats(path):
    """benchdata.py stats: [logical_bytes, path_bytes, files, dirs, symlinks]."""
    return [int(x) for x in run([PY, DATA_PY, "stats", path]).split()]


# ------------------------------------------------------------------ FUSE mounts

def _unescape_mountinfo(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def is_mounted(path):
    """From /proc/self/mountinfo, so a hung FUSE daemon cannot block the check."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(_unescape_mountinfo(line.split()[4]) == path for line in f)
    except OSError:
        return False


def unmount(path):
    for cmd in (["fusermount3", "-u", path], ["fusermount", "-u", path], ["fusermount3", "-uz", path]):
        if not is_mounted(path):
            return
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mount_start(name, cmd, env=None):
    """Start a foreground FUSE daemon on MNT and wait until it is mounted; returns seconds to ready."""
    os.makedirs(MNT, exist_ok=True)
    log_path, time_path = os.path.join(LOGS, f"{name}.log"), os.path.join(LOGS, f"{name}.time")
    t0 = time.perf_counter_ns()
    with open(log_path, "wb") as out:
        Procs.mount = subprocess.Popen([TIME, "-v", "-o", time_path, *cmd], env=dict(os.environ, **(env or {})),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    deadline = time.monotonic() + 30
    while not is_mounted(MNT):
        if Procs.mount.poll() is not None:
            Procs.mount = None
            print(tail(log_path), file=sys.stderr)
            raise BenchError(f"{name}: mount daemon exited (log: {log_path})")
        if time.monotonic() > deadline:
            mount_stop(name)
            raise BenchError(f"{name}: {MNT} not mounted after 30 s (log: {log_path})")
        time.sleep(0.05)
    return (time.perf_counter_ns() - t0) / 1e9


def mount_stop(name):
    """Unmount, wait for the daemon; returns its (peak RSS MiB, CPU s) over the mount's life."""
    proc = Procs.mount
    if proc is None:
        return "-", "-"
    unmount(MNT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log(f"{name}: daemon still running 30 s after unmount; terminating process group {proc.pid}")
        _end_group(proc)
    Procs.mount = None
    return parse_time_v(os.path.join(LOGS, f"{name}.time"))


def cleanup():
    if Procs.current is not None and Procs.current.poll() is None:
        _end_group(Procs.current)
    if Procs.mount is not None:
        unmount(MNT)
        try:
            Procs.mount.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _end_group(Procs.mount)
        Procs.mount = None
    elif is_mounted(MNT):
        unmount(MNT)
    subprocess.run(["rm", "-rf", RESTORE])


# ------------------------------------------------------------------ results

ROWS = []       # (key, fields): key is the BENCH_TOOLS name ("machine" for physical rows)


def row(key, *fields):
    fields = ["" if f is None else str(f) for f in fields]
    assert len(fields) == len(COLUMNS)
    ROWS.append((key, fields))
    with open(TSV, "a") as f:
        f.write("\t".join(x.replace("\t", " ").replace("\n", " ") for x in fields) + "\n")
    log("row: " + " | ".join(fields))


# ------------------------------------------------------------------ datasets

def stamp_ok(ds, stamp):
    p = os.path.join(DATA, f".stamp-{ds}")
    return os.path.isfile(p) and open(p).read().strip() == stamp


def write_stamp(ds, stamp):
    with open(os.path.join(DATA, f".stamp-{ds}"), "w") as f:
        f.write(stamp + "\n")


def prepare_datasets():
    os.makedirs(DATA, exist_ok=True)
    stamp = f"v{run([PY, DATA_PY, 'version']).strip()} scale={BENCH_SCALE}"
    if "mixed" in BENCH_DATASETS and not stamp_ok("mixed", stamp):
        log(f"generating dataset mixed (scale {BENCH_SCALE})")
        run(["rm", "-rf", f"{DATA}/mixed", f"{DATA}/.stamp-mixed"])
        run([PY, DATA_PY, "gen-mixed", f"{DATA}/mixed", "--scale", BENCH_SCALE], "gen-mixed")
        write_stamp("mixed", stamp)
    if "src" in BENCH_DATASETS and not stamp_ok("src", stamp):
        log("exporting dataset src (Swift package release tags)")
        run(["rm", "-rf", f"{DATA}/src", f"{DATA}/src-next", f"{DATA}/.stamp-src"])
        run([PY, DATA_PY, "gen-src", f"{DATA}/src", f"{DATA}/src-next", "--scale", BENCH_SCALE], "gen-src")
        write_stamp("src", stamp)
    many_stamp = f"many v{run([PY, MANY_PY, 'version']).strip()} files={BENCH_MANY_FILES}"
    if "many" in BENCH_DATASETS and not stamp_ok("many", many_stamp):
        log(f"generating dataset many ({BENCH_MANY_FILES} files)")
        run(["rm", "-rf", f"{DATA}/many", f"{DATA}/.stamp-many"])
        run([PY, MANY_PY, "gen", f"{DATA}/many", "--files", str(BENCH_MANY_FILES)], "gen-many")
        write_stamp("many", many_stamp)


def describe_datasets():
    lines = []
    names = [d for ds in BENCH_DATASETS for d in ([ds, "src-next"] if ds == "src" else [ds])]
    for ds in names:
        s = stats(os.path.join(DATA, ds))
        lines.append(f"| {ds} | {s[0] / 1e6:.1f} | {s[2]} | {s[3]} | {s[4]} |")
    return lines


def reset_work(ds):
    run(["rm", "-rf", os.path.join(WORK, ds)])
    os.makedirs(WORK, exist_ok=True)
    run(["cp", "-a", "--sparse=always", os.path.join(DATA, ds), os.path.join(WORK, ds)])


def apply_change(ds, log_name):
    if ds == "src":
        run([PY, DATA_PY, "sync", f"{DATA}/src-next", f"{WORK}/src"], log_name)
    elif ds == "mixed":
        run([PY, DATA_PY, "mutate-mixed", f"{WORK}/mixed"], log_name)
    else:
        run([PY, MANY_PY, "mutate", f"{WORK}/many"], log_name)


CHANGE_NOTE = {
    "src": "next release tags",
    "mixed": "append to 1% of files + 1 MiB rewritten mid big/holiday.mp4",
    "many": "touch 0.5% + append to 0.5% of files, 100 new files",
}


# ------------------------------------------------------------------ tool drivers
# Each driver: init(repo, id), backup(repo, dir, label, name) -> snapshot id, restore(repo, snap, target,
# name) -> Timed, restored_root(target, ds), mount(repo, snap, name) -> seconds to ready (None: no mount),
# mounted_root(snap, ds), check(repo, name) -> Timed. Every measured command goes through run_timed or
# mount_start so that all rows are measured the same way.

class Restic:
    tool, setting = "restic", "default (repo v2, zstd auto)"

    def env(self, repo):
        return {"RESTIC_REPOSITORY": repo}

    def init(self, repo, ident):
        run(["restic", "init"], f"{ident}-init", self.env(repo))

    def backup(self, repo, src, label, name):
        t = run_timed(name, ["restic", "backup", "--host", "bench", "."], cwd=src, env=self.env(repo))
        with open(t.log, errors="replace") as f:
            words = [line.split() for line in f if line.startswith("snapshot ") and " saved" in line]
        if not words:
            raise BenchError(f"{name}: no snapshot id in restic's output ({t.log})")
        return words[-1][1], t

    def restore(self, repo, snap, target, name):
        return run_timed(name, ["restic", "restore", snap, "--target", target], env=self.env(repo))

    def restored_root(self, target, ds):
        return target

    def mount(self, repo, snap, name):
        return mount_start(name, ["restic", "mount", MNT], env=self.env(repo))

    def mounted_root(self, snap, ds):
        return os.path.join(MNT, "ids", snap)

    def check(self, repo, name):
        return run_timed(name, ["restic", "check", "--read-data"], env=self.env(repo))


class Borg:
    tool = "borg"

    def __init__(self, compression, setting):
        self.compression, self.setting = compression, setting

    def init(self, repo, ident):
        run(["borg", "init", "--encryption=repokey-blake2", repo], f"{ident}-init")

    def backup(self, repo, src, label, name):
        comp = ["--compression", self.compression] if self.compression else []
        t = run_timed(name, ["borg", "create", *comp, "--stats", f"{repo}::{label}", "."], cwd=src, ok_rc=(0, 1))
        return label, t

    def restore(self, repo, snap, target, name):
        os.makedirs(target, exist_ok=True)
        return run_timed(name, ["borg", "extract", f"{repo}::{snap}"], cwd=target, ok_rc=(0, 1))

    def restored_root(self, target, ds):
        return target

    def mount(self, repo, snap, name):
        return mount_start(name, ["borg", "mount", "-f", f"{repo}::{snap}", MNT])

    def mounted_root(self, snap, ds):
        return MNT

    def check(self, repo, name):
        return run_timed(name, ["borg", "check", "--verify-data", repo])


class Polyad:
    """DESIGN.md §1-§3: polyad init|backup|snapshots --json|restore|verify --read-data and
    `polyadfs CONF MNT -f`, configured by a mount.conf per repository (as anchors.sh writes it)."""
    tool = "polyad"

    def __init__(self, level):
        self.level = level
        self.setting = f"zlib {level}"

    @staticmethod
    def conf(repo):
        return f"{repo}.conf"

    def env(self, repo):
        return {"POLYAD_CONFIG": self.conf(repo), "POLYAD_PASSWORD": PASSPHRASE}

    def exe(self, name):
        return os.path.join(POLYAD_BIN, name)

    def has_mount(self):
        return os.access(self.exe("polyadfs"), os.X_OK)

    def init(self, repo, ident):
        with open(self.conf(repo), "w") as f:
            f.write(f'backup:\n  local_dir: "{repo}"\n  compression_level: {self.level}\n'
                    f'  verify_integrity: false\n')
        os.chmod(self.conf(repo), 0o600)
        try:
            run([self.exe("polyad"), "init"], f"{ident}-init", self.env(repo))
        except BenchError as e:
            raise BenchError(f"{ident}: polyad init failed: {e}") from None

    def backup(self, repo, src, label, name):
        t = run_timed(name, [self.exe("polyad"), "backup", "--host", "bench", src], env=self.env(repo))
        out = run([self.exe("polyad"), "snapshots", "--json"], f"{name}-snapshots", self.env(repo))
        try:
            d = json.loads(out)
            d = d if isinstance(d, list) else d.get("snapshots", [])
            s = max(d, key=lambda x: x.get("time", ""))
            snap = (s.get("short_id") or s.get("id"))[:8]
        except (ValueError, TypeError, AttributeError) as e:
            raise BenchError(f"{name}: no snapshot id from polyad snapshots --json ({e}): {out[:200]!r}") from None
        return snap, t

    def restore(self, repo, snap, target, name):
        return run_timed(name, [self.exe("polyad"), "restore", snap, "--target", target], env=self.env(repo))

    def restored_root(self, target, ds):
        root = target + os.path.join(WORK, ds)
        return root if os.path.isdir(root) else target

    def mount(self, repo, snap, name):
        if not self.has_mount():
            return None
        return mount_start(name, [self.exe("polyadfs"), self.conf(repo), MNT, "-f"], env=self.env(repo))

    def incoming_mount(self, repo, settle, name, sync_on_close=True):
        """Mounts the store `repo` (init'ed with a config of its own) with mount.settle_seconds = settle."""
        with open(self.conf(repo), "w") as f:
            f.write(f'backup:\n  local_dir: "{repo}"\n  compression_level: {self.level}\n'
                    f'  verify_integrity: false\nmount:\n  settle_seconds: {settle}\n'
                    f'  sync_on_close: {"true" if sync_on_close else "false"}\n')
        os.chmod(self.conf(repo), 0o600)
        return mount_start(name, [self.exe("polyadfs"), self.conf(repo), MNT, "-f"], env=self.env(repo))

    def mounted_root(self, snap, ds):
        snaps = os.path.join(MNT, "snapshots")
        for day in sorted(os.listdir(snaps)):
            root = os.path.join(snaps, day, snap)
            if os.path.isdir(root):
                inner = root + os.path.join(WORK, ds)
                return inner if os.path.isdir(inner) else root
        raise BenchError(f"polyad: no {snaps}/<date>/{snap}")

    def check(self, repo, name):
        return run_timed(name, [self.exe("polyad"), "verify", "--read-data"], env=self.env(repo))


DRIVERS = {
    "restic": Restic(),
    "borg-lz4": Borg("", "repokey-blake2, lz4 (default)"),
    "borg-zlib6": Borg("zlib,6", "repokey-blake2, zlib,6"),
    "polyad-6": Polyad(6),
    "polyad-9": Polyad(9),
}


# ------------------------------------------------------------------ phases

class Bench:
    """Phases a-g of anchors.sh for one tool on one dataset."""

    def __init__(self, key, ds):
        self.key, self.ds = key, ds
        self.d = DRIVERS[key]
        self.ident = f"{key}-{ds}"
        self.repo = os.path.join(REPOS, self.ident)
        self.work = os.path.join(WORK, ds)
        self.logical = 0
        self.snap1 = None
        self.repo_bytes = 0

    def result(self, phase, secs, rate, rss, cpu, logical, delta, note):
        row(self.key, self.d.tool, self.d.setting, self.ds, phase, secs, rate, rss, cpu, logical,
            self.repo_bytes, delta, note)

    def run(self):
        log(f"== {self.d.tool} ({self.d.setting}) on {self.ds}")
        run(["rm", "-rf", self.repo])
        os.makedirs(REPOS, exist_ok=True)
        reset_work(self.ds)
        self.d.init(self.repo, self.ident)
        self.logical = stats(self.work)[0]
        self.backup_first()
        self.backup_again("backup-nochange", "b2", "")
        apply_change(self.ds, f"{self.ident}-change")
        self.backup_again("backup-changed", "b3", CHANGE_NOTE[self.ds])
        self.restore()
        self.mount_ls()
        self.mount_read()
        self.mount_read_large()
        self.check()
        self.incoming()
        run(["rm", "-rf", self.work])

    def backup_first(self):         # a + d: first backup; repository size against the logical size
        drop_caches()
        self.snap1, t = self.d.backup(self.repo, self.work, "b1", f"{self.ident}-backup-1st")
        self.repo_bytes = du_b(self.repo)
        self.result("backup-1st", fmt_s(t.wall), mbps(self.logical, t.wall), t.rss, t.cpu, self.logical,
                    self.repo_bytes, f"repo/logical={self.repo_bytes / self.logical:.3f}")

    def backup_again(self, phase, label, note):
        before = self.repo_bytes
        drop_caches()
        _, t = self.d.backup(self.repo, self.work, label, f"{self.ident}-{phase}")
        self.repo_bytes = du_b(self.repo)
        self.result(phase, fmt_s(t.wall), "-", t.rss, t.cpu, stats(self.work)[0], self.repo_bytes - before, note)

    def restore(self):              # e: full restore of the first snapshot into an empty dir, verified
        run(["rm", "-rf", RESTORE])
        os.makedirs(RESTORE)
        drop_caches()
        t = self.d.restore(self.repo, self.snap1, RESTORE, f"{self.ident}-restore")
        root = self.d.restored_root(RESTORE, self.ds)
        with open(os.path.join(LOGS, f"{self.ident}-verify.log"), "wb") as err:
            p = subprocess.run([PY, DATA_PY, "compare", os.path.join(DATA, self.ds), root],
                               stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        verdict = p.stdout.decode(errors="replace").strip() or f"compare exited {p.returncode}"
        if p.returncode != 0:
            log(f"WARNING: {self.ident}: restore differs from the source: {verdict} "
                f"(see {LOGS}/{self.ident}-verify.log)")
            State.restore_failures += 1
        run(["rm", "-rf", RESTORE])
        self.result("restore", fmt_s(t.wall), mbps(self.logical, t.wall), t.rss, t.cpu, self.logical, "", verdict)

    def through_mount(self, name, cmd):
        """Cold-mount the first snapshot, time cmd (bash, the snapshot's root as $0), unmount."""
        drop_caches()
        ready = self.d.mount(self.repo, self.snap1, f"{self.ident}-{name}-daemon")
        if ready is None:
            return None
        try:
            t = run_timed(f"{self.ident}-{name}", ["bash", "-c", cmd, self.d.mounted_root(self.snap1, self.ds)])
        finally:
            rss, cpu = mount_stop(f"{self.ident}-{name}-daemon")
        return t, ready, rss, cpu

    def no_mount(self, phase):
        self.result(phase, "-", "-", "-", "-", self.logical, "", "polyadfs not built yet")

    def mount_ls(self):             # f: metadata walk of a freshly mounted snapshot
        m = self.through_mount("mount-ls", 'ls -lR "$0" | wc -l')
        if m is None:
            return self.no_mount("mount-ls-lR")
        t, ready, rss, cpu = m
        self.result("mount-ls-lR", fmt_s(t.wall), "-", rss, cpu, self.logical, "",
                    f"mount ready {ready:.2f}s; {t.last_line()} lines")

    def mount_read(self):           # f: read every file through a freshly mounted snapshot
        m = self.through_mount("mount-read", READ_ALL)
        if m is None:
            return self.no_mount("mount-read-all")
        t, ready, rss, cpu = m
        n = int(t.last_line() or 0)
        self.result("mount-read-all", fmt_s(t.wall), mbps(n, t.wall), rss, cpu, self.logical, "",
                    f"mount ready {ready:.2f}s; read {n} B")

    def mount_read_large(self):     # one large file, cold, sequentially (not in anchors.sh)
        rel = LARGE_FILE.get(self.ds)
        if rel is None:
            return
        drop_caches()
        ready = self.d.mount(self.repo, self.snap1, f"{self.ident}-mount-large-daemon")
        if ready is None:
            return self.no_mount("mount-read-large")
        try:
            t = run_timed(f"{self.ident}-mount-large",
                          ["bash", "-c", READ_LARGE, self.d.mounted_root(self.snap1, self.ds), rel])
        finally:
            rss, cpu = mount_stop(f"{self.ident}-mount-large-daemon")
        n = int(t.last_line() or 0)
        self.result("mount-read-large", fmt_s(t.wall), mbps(n, t.wall), rss, cpu, n, "", f"cat {rel}: {n} B")

    def check(self):                # g: full integrity check, reading all data
        drop_caches()
        t = self.d.check(self.repo, f"{self.ident}-check")
        self.result("check-read-all", fmt_s(t.wall), mbps(self.repo_bytes, t.wall), t.rss, t.cpu, self.logical,
                    "", "MB/s over repo bytes")


    def incoming(self):             # issue 8: cp -a into /incoming until the snapshot appears; dd through it
        if not isinstance(self.d, Polyad) or not self.d.has_mount():
            return
        repo = self.repo + "-incoming"
        self.disk_cp()
        for sync_on_close, suffix in ((True, ""), (False, "-nosync")):
            self.drop_and_commit(repo, sync_on_close, suffix)
        if self.ds == BENCH_DATASETS[0]:
            self.incoming_dd(repo)
        run(["rm", "-rf", repo, repo + ".staging"])

    def disk_cp(self):              # the floor under incoming-cp: the same cp -a to a folder on the same disk
        target = os.path.join(REPOS, "cp-reference")
        run(["rm", "-rf", target])
        os.makedirs(target)
        drop_caches()
        t = run_timed(f"{self.ident}-disk-cp", ["cp", "-a", self.work, target + "/"])
        run(["rm", "-rf", target])
        row(self.key, self.d.tool, self.d.setting, self.ds, "disk-cp", fmt_s(t.wall), mbps(self.logical, t.wall),
            t.rss, t.cpu, self.logical, "", "", "cp -a to a folder on the staging disk (no mount), cold source")

    def drop_and_commit(self, repo, sync_on_close, suffix):
        """A new store; cp -a of the dataset into its /incoming; the commit; the snapshot restored, compared."""
        run(["rm", "-rf", repo, repo + ".staging"])
        reset_work(self.ds)         # the dataset as backup-1st saw it, not as backup-changed left it
        self.d.init(repo, f"{self.ident}-incoming{suffix}")
        drop_caches()
        self.d.incoming_mount(repo, INCOMING_SETTLE, f"{self.ident}-incoming{suffix}-daemon", sync_on_close)
        try:
            t = run_timed(f"{self.ident}-incoming{suffix}", [PY, "-c", DROP_AND_COMMIT, self.work, MNT])
        finally:
            rss, cpu = mount_stop(f"{self.ident}-incoming{suffix}-daemon")
        copied, total, snap = t.last_line().split()
        copied, total = float(copied), float(total)
        run(["rm", "-rf", RESTORE])
        os.makedirs(RESTORE)
        run([self.d.exe("polyad"), "restore", snap, "--target", RESTORE], f"{self.ident}-incoming{suffix}-restore",
            self.d.env(repo))
        with open(os.path.join(LOGS, f"{self.ident}-incoming{suffix}-verify.log"), "wb") as err:
            p = subprocess.run([PY, DATA_PY, "compare", os.path.join(DATA, self.ds), os.path.join(RESTORE, self.ds)],
                               stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        verdict = p.stdout.decode(errors="replace").strip() or f"compare exited {p.returncode}"
        if p.returncode != 0:
            log(f"WARNING: {self.ident}: the /incoming snapshot differs from the source: {verdict}")
            State.restore_failures += 1
        run(["rm", "-rf", RESTORE])
        stored = du_b(repo)
        how = "sync_on_close: true" if sync_on_close else "sync_on_close: false"
        row(self.key, self.d.tool, self.d.setting, self.ds, f"incoming-cp{suffix}", fmt_s(copied),
            mbps(self.logical, copied), "-", "-", self.logical, stored, "", f"cp -a into /incoming ({how})")
        row(self.key, self.d.tool, self.d.setting, self.ds, f"incoming-drop-commit{suffix}", fmt_s(total),
            mbps(self.logical, total), rss, cpu, self.logical, stored, "",
            f"cp -a ({how}), settle {INCOMING_SETTLE} s, commit: snapshot {snap}; restored: {verdict}; "
            "RSS/CPU: daemon")

    def incoming_dd(self, repo):    # one large file written through /incoming, beside dd to the same disk
        """Five rounds, each a dd to the staging disk and one through the mount, interleaved; the medians.
        Page cache not dropped: the source is /dev/zero, and on a virtual machine the first touch of memory
        the host took back is slow, which would land on whichever dd ran first after a drop."""
        n = max(64, int(512 * float(BENCH_SCALE)))
        self.d.incoming_mount(repo, 3600, f"{self.ident}-incoming-dd-daemon")
        through, disk = [], []
        try:
            for i in range(5):
                for target, times in ((os.path.join(REPOS, "dd-disk.tmp"), disk),
                                      (os.path.join(MNT, "incoming", "dd.tmp"), through)):
                    t = run_timed(f"{self.ident}-incoming-dd-{i}",
                                  ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={n}", "conv=fdatasync"])
                    os.unlink(target)   # before the unmount's commit
                    times.append(t)
        finally:
            rss, cpu = mount_stop(f"{self.ident}-incoming-dd-daemon")
        for phase, times, where in (("disk-dd", disk, "to the staging disk"), ("incoming-dd", through, "into /incoming")):
            walls = sorted(t.wall for t in times)
            median = walls[len(walls) // 2]
            row(self.key, self.d.tool, self.d.setting, "-", phase, fmt_s(median), mbps(n * 1048576, median),
                rss if phase == "incoming-dd" else "-", cpu if phase == "incoming-dd" else "-", n * 1048576, "", "",
                f"dd bs=1M count={n} conv=fdatasync {where}; median of 5 interleaved: "
                + " ".join(fmt_s(w) for w in walls) + " s")


class State:
    restore_failures = 0
    tool_failures = []


# ------------------------------------------------------------------ physical limits

def bench_physical():
    log("== physical limits")
    for alg in ("aes-256-gcm", "sha256"):
        out = run(["openssl", "speed", "-evp", alg, "-bytes", "16384", "-seconds", "3", "-mr"], "physical-openssl")
        bps = next((float(line.split(":")[3]) for line in out.splitlines() if line.startswith("+F:")), 0.0)
        row("machine", "machine", "openssl 1 thread", "-", f"{alg} 16KiB", 3, f"{bps / 1e6:.1f}", "-", "-",
            "", "", "", f"openssl speed -evp {alg} -bytes 16384")

    zds = "mixed" if "mixed" in BENCH_DATASETS else BENCH_DATASETS[0]
    for line in run([PY, DATA_PY, "zlib", os.path.join(DATA, zds), "--sample-mb", "64"], "physical-zlib").splitlines():
        level, s, inb, outb = line.split()
        s, inb, outb = float(s), int(inb), int(outb)
        row("machine", "machine", "python zlib 1 thread", zds, f"zlib-{level}", f"{s:.3f}", mbps(inb, s), "-",
            f"{s:.3f}", inb, "", "", f"ratio {inb / outb:.2f} on a 1 MiB-block sample")

    gcm = lookup("machine", "-", "aes-256-gcm 16KiB", "MB_per_s") or 0.0
    for ds, rel in LARGE_FILE.items():
        if ds not in BENCH_DATASETS:
            continue
        path = os.path.join(DATA, ds, rel)
        code = ("import sys, time, zlib\n"
                "data = open(sys.argv[1], 'rb').read()\n"
                "blocks = [zlib.compress(data[i:i + (1 << 20)], 6) for i in range(0, len(data), 1 << 20)]\n"
                "best = 1e9\n"
                "for _ in range(3):\n"
                "    t = time.perf_counter()\n"
                "    for b in blocks: zlib.decompress(b)\n"
                "    best = min(best, time.perf_counter() - t)\n"
                "print(best, len(data), sum(map(len, blocks)))\n")
        s, raw, packed = run([PY, "-c", code, path], "physical-inflate").split()
        s, raw, packed = float(s), int(raw), int(packed)
        inflate = raw / s / 1e6
        # Per output byte: inflate it, and decrypt its share of the compressed bytes.
        both = 1 / (1 / inflate + (packed / raw) / gcm) if gcm else inflate
        row("machine", "machine", "python zlib + openssl 1 thread", ds, "inflate+gcm", f"{s:.3f}", f"{both:.1f}", "-",
            f"{s:.3f}", raw, "", "", f"{rel}: inflate {inflate:.0f} MB/s (level-6 1 MiB blocks, ratio "
            f"{raw / packed:.2f}) with AES-256-GCM {gcm:.0f} MB/s over the compressed bytes")

    for ds in BENCH_DATASETS:
        drop_caches()
        t = run_timed(f"physical-read-cold-{ds}", ["bash", "-c", READ_ALL, os.path.join(DATA, ds)])
        n = int(t.last_line())
        row("machine", "machine", "cat, find -print0 + xargs", ds, "read-cold", fmt_s(t.wall), mbps(n, t.wall), "-",
            t.cpu, n, "", "", "page cache dropped")
        t = run_timed(f"physical-read-warm-{ds}", ["bash", "-c", READ_ALL, os.path.join(DATA, ds)])
        row("machine", "machine", "cat, find -print0 + xargs", ds, "read-warm", fmt_s(t.wall), mbps(n, t.wall), "-",
            t.cpu, n, "", "", "second read")

    n = max(64, int(512 * float(BENCH_SCALE)))
    drop_caches()
    dd_file = os.path.join(BENCH_DIR, "dd.tmp")
    t = run_timed("physical-dd", ["dd", "if=/dev/zero", f"of={dd_file}", "bs=1M", f"count={n}", "conv=fdatasync"])
    os.unlink(dd_file)
    row("machine", "machine", "dd conv=fdatasync", "-", "write", fmt_s(t.wall), mbps(n * 1048576, t.wall), "-",
        t.cpu, n * 1048576, "", "", f"bs=1M count={n} to the scratch disk")


# ------------------------------------------------------------------ report

def mb(x):
    try:
        return f"{int(x) / 1e6:.1f}"
    except ValueError:
        return x


def print_table(describe, started):
    restic_v = run(["restic", "version"], check=False).split()
    borg_v = run(["borg", "--version"], check=False).strip()
    openssl_v = " ".join(run(["openssl", "version"], check=False).split()[:2])
    polyad_v = ""
    if any(k.startswith("polyad") for k in BENCH_TOOLS):
        polyad_v = run([os.path.join(POLYAD_BIN, "polyad"), "--version"], check=False).strip().splitlines()
        polyad_v = f", polyad {polyad_v[0] if polyad_v else '(no --version)'}"
    print(f"# Polyad Backup benchmark — {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%MZ')}, "
          f"{os.cpu_count()} cores, BENCH_SCALE={BENCH_SCALE}, BENCH_MANY_FILES={BENCH_MANY_FILES}")
    print()
    print(f"restic {restic_v[1] if len(restic_v) > 1 else '?'}, {borg_v}, {openssl_v}{polyad_v}")
    print()
    print("| dataset | logical MB | files | dirs | symlinks |")
    print("|---|---:|---:|---:|---:|")
    for line in describe:
        print(line)
    print()
    print("| tool | setting | dataset | phase | s | MB/s | RSS MiB | CPU s | logical MB | repo MB | Δ repo MB | note |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for _, f in ROWS:
        f = f[:8] + [mb(f[8]), mb(f[9]), mb(f[10])] + [f[11].replace("|", "\\|")]
        print("| " + " | ".join(f) + " |")
    print()
    print_ratios()
    print()
    print(f"Run time: {(time.perf_counter_ns() - started) / 1e9:.2f} s. Rows as TSV: {TSV}; ratios: {RATIOS_TSV}; "
          f"tool output: {LOGS}/")


def lookup(key, ds, phase, col):
    """The numeric value of column col in the row (key, ds, phase), or None."""
    i = COLUMNS.index(col)
    for k, f in ROWS:
        if k == key and f[2] == ds and f[3] == phase:
            try:
                return float(f[i])
            except ValueError:
                return None
    return None


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "-"


def print_ratios():
    polyads = [k for k in ("polyad-6", "polyad-9") if k in BENCH_TOOLS]
    if not polyads:
        print("(No ratios: BENCH_TOOLS has no polyad-6 or polyad-9 rows.)")
        return
    borg_mount = "borg-lz4" if "borg-lz4" in BENCH_TOOLS else "borg-zlib6"
    # (label, better, function(polyad key, dataset) -> (numerator, denominator))
    # MB/s ratios are taken from seconds (both tools read the same logical bytes), not the rounded MB/s.
    def faster(phase, base):        # Polyad's rate ÷ base's rate = base's seconds ÷ Polyad's seconds
        return lambda k, d: (lookup(base, d, phase, "seconds"), lookup(k, d, phase, "seconds"))

    def slower(phase, base):        # Polyad's seconds ÷ base's seconds
        return lambda k, d: (lookup(k, d, phase, "seconds"), lookup(base, d, phase, "seconds"))

    specs = [
        ("backup-1st MB/s ÷ restic", "higher", faster("backup-1st", "restic")),
        ("backup-1st MB/s ÷ borg lz4", "higher", faster("backup-1st", "borg-lz4")),
        ("repo bytes ÷ borg zlib,6 (after backup-1st)", "lower",
         lambda k, d: (lookup(k, d, "backup-1st", "repo_bytes"), lookup("borg-zlib6", d, "backup-1st", "repo_bytes"))),
        ("backup-nochange s ÷ restic", "lower", slower("backup-nochange", "restic")),
        ("backup-changed s ÷ restic", "lower", slower("backup-changed", "restic")),
        ("restore MB/s ÷ restic", "higher", faster("restore", "restic")),
        ("check s: restic ÷ Polyad", "higher", faster("check-read-all", "restic")),
    ]
    for phase in ("backup-1st", "backup-nochange", "backup-changed", "restore", "check-read-all",
                  "mount-ls-lR", "mount-read-all"):
        specs.append((f"peak RSS ÷ restic: {phase}", "lower",
                      lambda k, d, p=phase: (lookup(k, d, p, "peak_rss_MiB"), lookup("restic", d, p, "peak_rss_MiB"))))
    def ready(key, ds):             # "mount ready 0.25s" in the mount-read-all row's note
        i = COLUMNS.index("note")
        for k, f in ROWS:
            if k == key and f[2] == ds and f[3] == "mount-read-all" and f[i].startswith("mount ready "):
                return float(f[i].split()[2].rstrip("s;"))
        return None

    specs += [
        ("mount read-all MB/s ÷ restic mount", "higher", faster("mount-read-all", "restic")),
        ("mount read-all MB/s ÷ own restore MB/s", "higher",
         lambda k, d: (lookup(k, d, "restore", "seconds"), lookup(k, d, "mount-read-all", "seconds"))),
        ("mount read-large MB/s ÷ 1-core inflate+GCM", "higher",
         lambda k, d: (lookup(k, d, "mount-read-large", "MB_per_s"), lookup("machine", d, "inflate+gcm", "MB_per_s"))),
        ("mount read-large MB/s ÷ restic mount", "higher", faster("mount-read-large", "restic")),
        ("mount ready s ÷ restic", "lower", lambda k, d: (ready(k, d), ready("restic", d))),
        (f"mount read-all MB/s ÷ {borg_mount} mount", "higher", faster("mount-read-all", borg_mount)),
        ("mount ls-lR s: restic ÷ Polyad", "higher", faster("mount-ls-lR", "restic")),
        ("incoming drop+commit s ÷ own backup-1st s (target ≤ 1.5)", "lower",
         lambda k, d: (lookup(k, d, "incoming-drop-commit", "seconds"), lookup(k, d, "backup-1st", "seconds"))),
        ("incoming drop+commit s ÷ restic backup-1st s", "lower",
         lambda k, d: (lookup(k, d, "incoming-drop-commit", "seconds"), lookup("restic", d, "backup-1st", "seconds"))),
        ("incoming cp s ÷ disk cp s (cp -a through /incoming vs to the same disk)", "lower",
         lambda k, d: (lookup(k, d, "incoming-cp", "seconds"), lookup(k, d, "disk-cp", "seconds"))),
        ("disk cp s ÷ own backup-1st s (the floor: cp -a alone)", "lower",
         lambda k, d: (lookup(k, d, "disk-cp", "seconds"), lookup(k, d, "backup-1st", "seconds"))),
        ("incoming drop+commit, sync_on_close false, s ÷ own backup-1st s", "lower",
         lambda k, d: (lookup(k, d, "incoming-drop-commit-nosync", "seconds"), lookup(k, d, "backup-1st", "seconds"))),
        ("incoming dd MB/s ÷ disk dd MB/s (target ≥ 0.70)", "higher",
         lambda k, d: (lookup(k, "-", "disk-dd", "seconds"), lookup(k, "-", "incoming-dd", "seconds"))
         if d == BENCH_DATASETS[0] else (None, None)),
    ]
    heads = [f"Polyad zlib {k.split('-')[1]}" for k in polyads]
    print("Ratios (Polyad against restic and borg, same data, same run; '-' where a row is missing):")
    print()
    print("| dataset | ratio | " + " | ".join(heads) + " | better |")
    print("|---|---|" + "---:|" * len(polyads) + "---|")
    with open(RATIOS_TSV, "w") as tsv:
        tsv.write("dataset\tratio\t" + "\t".join(polyads) + "\tbetter\n")
        for ds in BENCH_DATASETS:
            for label, better, fn in specs:
                vals = [ratio(*fn(k, ds)) for k in polyads]
                if label.startswith(("peak RSS ÷ restic: mount", "mount ", "incoming ")) and all(v == "-" for v in vals):
                    continue        # no mount rows for Polyad yet
                print(f"| {ds} | {label} | " + " | ".join(vals) + f" | {better} |")
                tsv.write(f"{ds}\t{label}\t" + "\t".join(vals) + f"\t{better}\n")


# ------------------------------------------------------------------ main

def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


def need(cmd, why):
    from shutil import which
    if which(cmd) is None:
        die(f"missing command: {cmd} ({why})")


def preflight():
    if not BENCH_DIR.startswith("/") or os.path.normpath(BENCH_DIR) == "/":
        die("BENCH_DIR must be an absolute path other than /")
    if os.path.isdir(BENCH_DIR) and os.listdir(BENCH_DIR) and not os.path.exists(f"{BENCH_DIR}/.polyad-bench"):
        die(f"{BENCH_DIR} exists and is not a benchmark scratch directory (no .polyad-bench marker)")
    for t in BENCH_TOOLS:
        if t not in DRIVERS:
            die(f"unknown tool in BENCH_TOOLS: {t} (known: {' '.join(ALL_TOOLS)})")
    for ds in BENCH_DATASETS:
        if ds not in ALL_DATASETS:
            die(f"unknown dataset in BENCH_DATASETS: {ds} (known: {' '.join(ALL_DATASETS)})")
    if not BENCH_DATASETS or not BENCH_TOOLS:
        die("BENCH_DATASETS and BENCH_TOOLS must not be empty")
    try:
        if float(BENCH_SCALE) <= 0:
            raise ValueError
    except ValueError:
        die(f"BENCH_SCALE must be a positive number, not {BENCH_SCALE!r}")
    if BENCH_MANY_FILES < 100:
        die("BENCH_MANY_FILES must be at least 100")
    if not os.access(TIME, os.X_OK):
        die(f"{TIME} is missing: apt-get install time")
    for f in (DATA_PY, MANY_PY):
        if not os.path.isfile(f):
            die(f"{f} is missing (BENCH_SHARED names the folder holding benchdata.py)")
    if os.geteuid() != 0:
        log("WARNING: not root: the page cache cannot be dropped, so reads are not cold")
    if any(t == "restic" for t in BENCH_TOOLS):
        need("restic", "apt-get install restic")
    if any(t.startswith("borg") for t in BENCH_TOOLS):
        need("borg", "apt-get install borgbackup")
    need("fusermount3", "apt-get install fuse3")
    need("openssl", "physical rows")
    need("du", "coreutils")
    if "src" in BENCH_DATASETS:
        need("git", "the src dataset is exported from /opt/swift-packages")
    if not os.path.exists("/dev/fuse"):
        die("/dev/fuse is missing: the mount rows need it (modprobe fuse, or give the container --device /dev/fuse)")
    if any(t.startswith("polyad") for t in BENCH_TOOLS):
        exe = os.path.join(POLYAD_BIN, "polyad") if POLYAD_BIN else ""
        if not POLYAD_BIN or not os.access(exe, os.X_OK):
            die(f"no executable polyad in POLYAD_BIN={POLYAD_BIN or '(unset)'}: run Scripts/bench (it builds "
                "`swift build -c release --product polyad`), or leave polyad-6/polyad-9 out of BENCH_TOOLS, "
                "e.g. BENCH_TOOLS='restic borg-lz4 borg-zlib6'")
        if not os.access(os.path.join(POLYAD_BIN, "polyadfs"), os.X_OK):
            log(f"note: no polyadfs in {POLYAD_BIN}: Polyad's mount rows will say 'polyadfs not built yet'")
    os.makedirs(BENCH_DIR, exist_ok=True)
    open(f"{BENCH_DIR}/.polyad-bench", "a").close()
    if is_mounted(MNT):
        log(f"unmounting a stale benchmark mount at {MNT}")
        unmount(MNT)
        if is_mounted(MNT):
            die(f"{MNT} is still mounted; unmount it (fusermount3 -uz {MNT})")
    subprocess.run(["rm", "-rf", REPOS, WORK, RESTORE, LOGS, HOME], check=True)
    for d in (LOGS, f"{HOME}/restic-cache", f"{HOME}/borg", f"{HOME}/xdg-cache"):
        os.makedirs(d)
    with open(TSV, "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
    os.environ.update({
        "RESTIC_PASSWORD": PASSPHRASE, "BORG_PASSPHRASE": PASSPHRASE, "POLYAD_PASSWORD": PASSPHRASE,
        "RESTIC_CACHE_DIR": f"{HOME}/restic-cache", "BORG_BASE_DIR": f"{HOME}/borg",
        "XDG_CACHE_HOME": f"{HOME}/xdg-cache", "RESTIC_PROGRESS_FPS": "0.2", "LC_ALL": "C.UTF-8",
    })


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def main():
    started = time.perf_counter_ns()
    preflight()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        prepare_datasets()
        describe = describe_datasets()
        if BENCH_PHYSICAL:
            bench_physical()
        for key in BENCH_TOOLS:
            for ds in BENCH_DATASETS:
                b = Bench(key, ds)
                try:
                    b.run()
                except BenchError as e:
                    log(f"ERROR: {b.ident}: {e}; going on with the next tool or dataset")
                    State.tool_failures.append(b.ident)
                    cleanup()
                    row(key, b.d.tool, b.d.setting, ds, "FAILED", "-", "-", "-", "-", "", "", "", str(e))
        print_table(describe, started)
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        cleanup()
        sys.exit(130)
    except BenchError as e:
        cleanup()
        die(str(e))
    cleanup()
    log(f"done in {(time.perf_counter_ns() - started) / 1e9:.2f} s")
    problems = []
    if State.restore_failures:
        problems.append(f"{State.restore_failures} restore(s) did not match their source")
    if State.tool_failures:
        problems.append(f"failed: {' '.join(State.tool_failures)}")
    if problems:
        die("; ".join(problems))


if __name__ == "__main__":
    main()
