#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn test logs into TAP, verdicts and the closing summary of scripts/test.sh.

usage: tap-report.py guest --label L --driver D --plans A[,B...] --expect XFAIL
                           --tap TAP --console LOG --outdir DIR [...]
       tap-report.py tap   --label L --tap FILE --results OUT.tsv [--id-prefix P]
       tap-report.py cargo --label L --log FILE --rc N --results OUT.tsv
       tap-report.py total [--logs DIR] FILE.tsv...

guest: one guest boot that ran one or more plans. The guest's TAP channel
frames each plan ("# plan: P" ... "# plan-end: P") and each plan line
("# suite: CMD ARGS" ... "# exit: CMD RC"); every "# suite:" line opens a
suite of its own, so a program run twice keeps two exit statuses. The
console log (kernel log: KUnit results, splats) is cut at the guest's
"vfsrs: plan P start|end" kernel messages. Each plan's host checks are read
from DIR/P/hostcheck.tap. Results matching the shell globs in XFAIL (over
"suite:test" or "plan:suite:test") are expected failures.

Failures: a "not ok" result; a suite that exits non-zero (expected only when
the pattern names it or every failing result of that suite is expected),
never finishes, reports fewer or more results than its plan, or reports
nothing; a TAP line outside any suite; "Bail out!"; a plan that did not run
or did not finish; a timeout; a failing KUnit case; any kernel splat in the
part of the console log that belongs to a plan (or to the boot).

Results files (.tsv): "# label: TEXT" and "# note: TEXT" header lines (and
"# reused: TEXT" when scripts/test.sh copied them from an earlier run with
the same inputs instead of running the tests), then one line per result:
STATUS OWNER COUNT ID NAME NOTE (tab separated). A result whose NOTE starts
with "reused:" (a lint check not run again) counts as reused too.
  STATUS  pass, fail, xfail, xpass or skip
  OWNER   project (this project's tests) or kernel (the kernel's own tests)
  COUNT   each (counted every time it runs) or build:ID (counted once per
          kernel build: the Rust doctests the kernel runs at every boot)
  ID      the test's name without where it ran (for counting distinct tests)
"""
import argparse
import fnmatch
import os
import re
import sys

SPLATS = [
    r"Oops", r"BUG:", r"WARNING:", r"Kernel panic", r"general protection fault",
    r"INFO: possible", r"possible circular locking", r"possible recursive locking",
    r"inconsistent lock state", r"KASAN", r"UBSAN", r"unreferenced object",
    r"Call Trace:", r"kernel BUG at", r"RCU stall", r"hung_task", r"blocked for more than",
]
SPLAT_RE = re.compile("|".join(SPLATS))
PRINTK_RE = re.compile(r"^\[\s*\d+\.\d+\] ?")
RESULT_RE = re.compile(r"^(not )?ok \d+(?: -)?(?: (.*?))?(?:\s+#\s*(.*))?$")
PLANLINE_RE = re.compile(r"^1\.\.(\d+)")
MARK_RE = re.compile(r"^vfsrs: plan (\S+) (start|end)$")
BOOT = "boot"


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\r\n").rstrip("\r") for line in f]
    except OSError:
        return []


class Result:
    """One result: NAME is "suite:test" (what xfail patterns match)."""

    def __init__(self, name, ok, directive="", note="", owner="project", count="each"):
        self.name, self.ok, self.directive, self.note = name, ok, directive, note
        self.owner, self.count = owner, count
        self.explained_by = None  # (exit) results: the suite's failing results


class Suite:
    """One "# suite:" frame: one plan line, one run of one program."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.name = cmd.split()[0] if cmd.split() else "(unnamed)"
        self.planned = None
        self.results = []
        self.exit = None
        self.times = None


class Section:
    """The part of a guest run that belongs to one plan, or to the boot."""

    def __init__(self, name):
        self.name = name
        self.started = name == BOOT
        self.ended = False
        self.suites = []
        self.extra = []  # results that belong to no suite (stray lines, bail outs)


def parse_tap(lines, plans=None, any_plan=False):
    """Sections of a TAP channel: {"boot": Section, plan: Section}, and "# done".
    Plans not in PLANS are an error unless ANY_PLAN."""
    sections = {BOOT: Section(BOOT)}
    for p in plans or []:
        sections[p] = Section(p)
    cur = sections[BOOT]
    suite = None
    done = False
    for line in lines:
        if line.startswith("# plan: "):
            p = line[len("# plan: "):].strip()
            if p not in sections and not any_plan:
                sections[BOOT].extra.append(Result("runner:(unexpected plan)", False,
                                                   note=f"the guest ran plan {p!r}, not asked for"))
            if p not in sections:
                sections[p] = Section(p)
            cur = sections[p]
            cur.started = True
            suite = None
            continue
        if line.startswith("# plan-end: "):
            p = line[len("# plan-end: "):].strip()
            if p in sections:
                sections[p].ended = True
            cur = sections[BOOT]
            suite = None
            continue
        if line.startswith("# suite: "):
            suite = Suite(line[len("# suite: "):].strip())
            cur.suites.append(suite)
            continue
        if line.startswith("# exit: "):
            parts = line[len("# exit: "):].split()
            closed = None
            if len(parts) == 2 and re.fullmatch(r"-?\d+", parts[1]):
                for s in reversed(cur.suites):
                    if s.name == parts[0] and s.exit is None:
                        s.exit = int(parts[1])
                        closed = s
                        break
            if closed is None:
                cur.extra.append(Result("runner:(stray exit line)", False, note=line))
            if closed is suite:
                suite = None
            continue
        if line.startswith("# time: ") and suite is None and cur.suites:
            parts = line[len("# time: "):].split()
            try:
                cur.suites[-1].times = float(parts[-1]) - float(parts[-2])
            except (ValueError, IndexError):
                pass
            continue
        if line.startswith("# done"):
            done = True
            continue
        if line.startswith("Bail out!"):
            where = suite.name if suite else "runner"
            cur.extra.append(Result(f"{where}:(bail out)", False, note=line))
            continue
        m = PLANLINE_RE.match(line)
        if m:
            if suite is not None:
                suite.planned = (suite.planned or 0) + int(m.group(1))
            else:
                cur.extra.append(Result("runner:(stray TAP plan)", False,
                                        note=f"{line!r} outside any suite"))
            continue
        m = RESULT_RE.match(line)
        if m:
            if suite is not None:
                suite.results.append(Result(f"{suite.name}:{(m.group(2) or '').strip()}",
                                            m.group(1) is None, (m.group(3) or "").strip()))
            else:
                cur.extra.append(Result("runner:(stray TAP result)", False,
                                        note=f"{line!r} outside any suite"))
    return sections, done


def suite_results(s):
    """A suite's own results plus what its framing says about it."""
    out = list(s.results)
    for r in out:
        if not r.ok and not r.note and r.directive and not is_skip(r):
            r.note = r.directive
    where = f"({s.cmd})"
    n = len(s.results)
    if s.planned is not None and n != s.planned:
        out.append(Result(f"{s.name}:(plan)", False,
                          note=f"{n} of {s.planned} planned results {where}"))
    if s.exit is None:
        out.append(Result(f"{s.name}:(exit)", False, note=f"the suite never finished {where}"))
    elif s.exit != 0:
        r = Result(f"{s.name}:(exit)", False, note=f"exit status {s.exit} {where}")
        r.explained_by = [x for x in s.results if not x.ok and not is_skip(x)]
        out.append(r)
    elif s.planned is None and n == 0:
        out.append(Result(f"{s.name}:(no results)", False,
                          note=f"exit status 0 but no TAP plan or result {where}"))
    return out


def is_skip(r):
    return r.directive.upper().startswith("SKIP")


def parse_console(lines, project_root):
    """KUnit results and splats of the console log, per section."""
    kunit = {BOOT: {}}
    splats = {BOOT: []}
    cur = BOOT
    suite = None
    location = {}
    for raw in lines:
        line = PRINTK_RE.sub("", raw)
        m = MARK_RE.match(line.strip())
        if m:
            cur = m.group(1) if m.group(2) == "start" else BOOT
            kunit.setdefault(cur, {})
            splats.setdefault(cur, [])
            continue
        m = re.match(r"^\s*# Subtest: (\S+)", line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r"^\s*# (\S+)\.location: (\S+?):\d+", line)
        if m:
            location[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^( {4,})(not )?ok \d+ (\S+)(?:\s+#\s*(.*))?$", line)
        if m and suite:
            test = m.group(3)
            owner, count = "project", "each"
            if suite.startswith("rust_doctests"):
                count = "build"
                path = location.get(test, "")
                ours = path and project_root and os.path.isfile(os.path.join(project_root, path))
                owner = "project" if ours else "kernel"
            name = f"kunit.{suite}:{test}"
            r = Result(name, m.group(2) is None, (m.group(4) or "").strip(), owner=owner, count=count)
            seen = kunit[cur].get(name)
            # A case that runs several times (a module loaded again) counts once
            # per section, and fails if any run failed.
            if seen is None or (seen.ok and not r.ok):
                kunit[cur][name] = r
            continue
        if SPLAT_RE.search(line):
            splats[cur].append(line.strip())
    return kunit, splats


def load_xfail(path):
    pats = []
    for line in read_lines(path):
        line = line.split("#", 1)[0].strip()
        if line:
            pats.append(line)
    return pats


def matches(pats, name, scopes):
    """NAME is listed, unscoped or (for every scope given) as "scope:NAME"."""
    if any(fnmatch.fnmatchcase(name, p) for p in pats):
        return True
    return bool(scopes) and all(any(fnmatch.fnmatchcase(f"{s}:{name}", p) for p in pats)
                                for s in scopes)


def classify(r, pats, scopes):
    if is_skip(r):
        return "skip"
    listed = matches(pats, r.name, scopes)
    if r.ok:
        return "xpass" if listed else "pass"
    if not listed and r.explained_by:
        listed = all(classify(x, pats, scopes) == "xfail" for x in r.explained_by)
    return "xfail" if listed else "fail"


def fmt_counts(c):
    return f"{c['pass'] + c['xpass']} passed, {c['fail']} failed, {c['xfail']} xfail, {c['skip']} skipped"


def new_counts():
    return {"pass": 0, "fail": 0, "xfail": 0, "xpass": 0, "skip": 0}


def write_results(path, label, rows, notes=()):
    with open(path, "w") as f:
        f.write(f"# label: {label}\n")
        for n in notes:
            f.write(f"# note: {n}\n")
        for status, owner, count, tid, name, note in rows:
            note = note.replace("\t", " ").replace("\n", " ")
            f.write(f"{status}\t{owner}\t{count}\t{tid}\t{name}\t{note}\n")


def cmd_guest(a):
    plans = [p for p in a.plans.split(",") if p]
    labels = dict(x.split("=", 1) for x in a.plan_label)
    if len(plans) == 1 and plans[0] not in labels:
        labels[plans[0]] = a.label
    label_of = {p: labels.get(p, f"{a.label}/{p}") for p in plans}
    label_of[BOOT] = f"{a.label} (boot)"
    sections, done = parse_tap(read_lines(a.tap), plans)
    kunit, splats = parse_console(read_lines(a.console), a.project_root)
    pats = load_xfail(a.expect)
    hostchecks = [p for p in a.hostchecks.split(",") if p]

    # What happened to each plan.
    stopped_in = next((p for p in plans if sections[p].started and not sections[p].ended), None)
    why = a.timeout or (f"the guest stopped during plan {stopped_in}" if stopped_in else
                        "the guest stopped before running it")
    per = {}
    for name in [BOOT] + plans:
        sec = sections[name]
        res = []
        for s in sec.suites:
            res += suite_results(s)
        res += sec.extra
        if name != BOOT:
            hc_dir = os.path.join(a.outdir, name)
            hc_lines = read_lines(os.path.join(hc_dir, "hostcheck.tap"))
            if not hc_lines and name in hostchecks and sec.started:
                res.append(Result("hostcheck:(not run)", False,
                                  note="the plan has a host check, but it left no output"))
            if hc_lines:
                hc, _ = parse_tap(hc_lines)
                for s in hc[BOOT].suites:
                    res += suite_results(s)
                res += hc[BOOT].extra
                if not hc[BOOT].suites:
                    res.append(Result("hostcheck:(no results)", False,
                                      note="the host check printed no suite"))
                st = [x for x in hc_lines if x.startswith("# hostcheck-status: ")]
                if st and st[-1].split()[-1] != "0":
                    res.append(Result("hostcheck:(exit)", False,
                                      note=f"the host check exited {st[-1].split()[-1]}"))
            if not sec.started:
                res.append(Result("runner:(not run)", False, note=why))
            elif not sec.ended:
                note = a.timeout if a.timeout and a.timeout_plan == name else \
                    "the guest stopped during this plan (see console.log)"
                res.append(Result("runner:(plan finished)", False, note=note))
        else:
            if not done and stopped_in is None:
                res.append(Result("runner:(guest finished)", False,
                                  note=a.timeout or "the guest stopped before '# done' (see console.log)"))
        res += list(kunit.get(name, {}).values())
        sp = splats.get(name, [])
        if name == BOOT or sec.started:
            res.append(Result("runner:no kernel splat", not sp, "",
                              "; ".join(sp[:5]) + (" ..." if len(sp) > 5 else "")))
        per[name] = res

    build = a.build_id or "unknown"
    print(f"# {a.label}: {', '.join(plans)} ({a.seconds}s in the guest)")
    for name in plans:
        for s in sections[name].suites:
            if s.times is not None:
                print(f"# time: {name}: {s.cmd}: {s.times:.1f}s")
    total = sum(len(v) for v in per.values())
    print(f"1..{total}")
    i = 0
    any_failed = False
    grand = new_counts()
    doct = {"project": new_counts(), "kernel": new_counts()}
    lines_out = []
    for name in [BOOT] + plans:
        scopes = plans if name == BOOT else [name]
        c = new_counts()
        rows = []
        for r in per[name]:
            i += 1
            st = classify(r, pats, scopes)
            tag = {"skip": f" # {r.directive}", "xfail": " # XFAIL",
                   "xpass": f" # XPASS (listed in {os.path.basename(a.expect)})"}.get(st, "")
            print(f"{'not ok' if st == 'fail' else 'ok'} {i} {label_of[name]}:{r.name}{tag}")
            if r.note and st != "pass":
                print(f"#   {r.note}")
            count = f"build:{build}" if r.count == "build" else "each"
            rows.append((st, r.owner, count, r.name, f"{label_of[name]}:{r.name}", r.note))
            if r.count == "build":
                doct[r.owner][st] += 1
            else:
                c[st] += 1
                grand[st] += 1
            any_failed |= st == "fail"
        d = os.path.join(a.outdir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "summary"), "w") as f:
            f.write(f"{c['pass'] + c['xpass']} {c['fail']} {c['xfail']} {c['skip']}\n")
        write_results(os.path.join(d, "results.tsv"), label_of[name], rows)
        lines_out.append(f"{label_of[name]}: {fmt_counts(c)}")
    for owner, what in (("kernel", "the kernel's Rust doctests"),
                        ("project", "this project's Rust doctests")):
        c = doct[owner]
        if sum(c.values()):
            print(f"# {what} at boot: {fmt_counts(c)} (scripts/test.sh counts them once per kernel build)")
    for line in lines_out:
        print(line)
    with open(os.path.join(a.outdir, "summary"), "w") as f:
        f.write(f"{grand['pass'] + grand['xpass']} {grand['fail']} {grand['xfail']} {grand['skip']}\n")
    print(f"{a.label}: {fmt_counts(grand)}")
    return 1 if any_failed else 0


def cmd_tap(a):
    """A plain TAP stream (lint, runner self-tests): suites as in the guest."""
    sections, _ = parse_tap(read_lines(a.tap), any_plan=True)
    res = []
    for sec in sections.values():
        for s in sec.suites:
            res += suite_results(s)
        res += sec.extra
    if not any(sec.suites for sec in sections.values()):
        res.append(Result("runner:(no results)", False, note=f"no suite in {a.tap}"))
    pats = load_xfail(a.expect) if a.expect else []
    rows, c = [], new_counts()
    for r in res:
        st = classify(r, pats, [])
        c[st] += 1
        # "ok N NAME # reused: ..." (scripts/lint.sh): a verdict not run again.
        note = r.directive if r.ok and r.directive.lower().startswith("reused:") else r.note
        rows.append((st, "project", "each", f"{a.id_prefix}{r.name}", f"{a.label}:{r.name}", note))
    write_results(a.results, a.label, rows, a.note)
    print(f"{a.label}: {fmt_counts(c)}")
    return 1 if c["fail"] else 0


def cmd_cargo(a):
    """cargo test output: one result per libtest "test NAME ... STATUS" line."""
    lines = read_lines(a.log)
    rows, c = [], new_counts()
    target = ""
    summaries = 0
    for line in lines:
        m = re.match(r"^\s*Running (?:unittests )?(\S+)", line) or re.match(r"^\s*Doc-tests (\S+)", line)
        if m:
            target = m.group(1)
            continue
        m = re.match(r"^test (.+?) \.\.\. (ok|FAILED|ignored)(?:,.*)?$", line)
        if m:
            st = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}[m.group(2)]
            tid = f"{a.label}:{target}:{m.group(1)}"
            rows.append((st, "project", "each", tid, tid, ""))
            c[st] += 1
            continue
        if line.startswith("test result:"):
            summaries += 1
    # A failing test already fails the run; an exit status with none (a
    # crash, a build failure) is a failure of its own.
    if summaries == 0 or (a.rc != 0 and c["fail"] == 0):
        note = f"cargo test exited {a.rc}" + ("" if summaries else " before any test ran (build failure?)")
        rows.append(("fail", "project", "each", f"{a.label}:(exit)", f"{a.label}:(exit)", note))
        c["fail"] += 1
    write_results(a.results, a.label, rows, a.note)
    print(f"{a.label}: {fmt_counts(c)}")
    return 1 if c["fail"] else 0


def read_results(path):
    """(label, notes, rows, reused): reused is the "# reused:" text or ""."""
    label, notes, rows, reused = os.path.basename(path), [], [], ""
    for line in read_lines(path):
        if line.startswith("# label: "):
            label = line[len("# label: "):]
        elif line.startswith("# note: "):
            notes.append(line[len("# note: "):])
        elif line.startswith("# reused: "):
            reused = line[len("# reused: "):] or "yes"
        elif line and not line.startswith("#"):
            f = line.split("\t")
            if len(f) >= 5:
                rows.append((f + [""])[:6])
    return label, notes, rows, reused


def cmd_total(a):
    each = new_counts()
    distinct = set()
    once = {}  # (build, owner, id) -> status (worst wins)
    once_ran = set()  # the keys of once that some result not reused reported
    reused_passed = 0  # passing results of this run that an earlier run reported
    boots = set()
    failures = []
    width = 52
    print(f"Results{f' (logs in {a.logs})' if a.logs else ''}:")
    for path in a.files:
        label, notes, rows, reused = read_results(path)
        c = new_counts()
        for st, owner, count, tid, name, note in rows:
            if st not in c:
                st = "fail"
            was_reused = bool(reused) or note.startswith("reused:")
            if count.startswith("build:"):
                key = (count[len("build:"):], owner, tid)
                boots.add(os.path.dirname(path))
                prev = once.get(key)
                order = ["pass", "xpass", "skip", "xfail", "fail"]
                if prev is None or order.index(st) > order.index(prev):
                    once[key] = st
                if not was_reused:
                    once_ran.add(key)
                continue
            c[st] += 1
            each[st] += 1
            distinct.add(tid)
            if was_reused and st in ("pass", "xpass"):
                reused_passed += 1
            if st == "fail":
                failures.append(f"{name}{f'  ({note})' if note else ''}")
        line = f"  {label:<{width}} {c['pass'] + c['xpass']:5d} passed " \
               f"{c['fail']:4d} failed {c['xfail']:4d} xfail {c['skip']:4d} skipped"
        print(line + ("  [reused]" if reused else "") + "".join(f"  [{n}]" for n in notes))
    if failures:
        print("Failures:")
        for f in failures:
            print(f"  {f}")
    doc = {"project": new_counts(), "kernel": new_counts()}
    builds = set()
    for (build, owner, tid), st in once.items():
        doc.setdefault(owner, new_counts())[st] += 1
        builds.add(build)
        if owner == "project":
            distinct.add(tid)
        if (build, owner, tid) not in once_ran and st in ("pass", "xpass"):
            reused_passed += 1
    proj = {k: each[k] + doc["project"][k] for k in each}
    print(f"This project's tests: {fmt_counts(proj)} ({len(distinct)} distinct tests"
          f"{'; its Rust doctests counted once per kernel build' if sum(doc['project'].values()) else ''})")
    if sum(doc["kernel"].values()):
        print(f"The kernel's own Rust doctests, counted once per kernel build "
              f"({len(builds)} build(s), run at each of {len(boots)} boots): {fmt_counts(doc['kernel'])}")
    passed = proj["pass"] + proj["xpass"] + doc["kernel"]["pass"] + doc["kernel"]["xpass"]
    failed = proj["fail"] + doc["kernel"]["fail"]
    # The last line reads "N passed, N failed"; when some passed results come
    # from earlier runs with the same inputs (scripts/test.sh, unless
    # --fresh), it says how many.
    print(f"{passed} passed, {failed} failed"
          + (f" ({reused_passed} of them reused from earlier runs with identical inputs)"
             if reused_passed else ""))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("guest")
    g.add_argument("--label", required=True)
    g.add_argument("--driver", required=True)
    g.add_argument("--plans", required=True)
    g.add_argument("--plan-label", action="append", default=[], help="PLAN=LABEL")
    g.add_argument("--expect", required=True)
    g.add_argument("--tap", required=True)
    g.add_argument("--console", required=True)
    g.add_argument("--outdir", required=True, help="DIR/PLAN/hostcheck.tap in, summaries out")
    g.add_argument("--hostchecks", default="", help="plans that have a host check")
    g.add_argument("--timeout", default="")
    g.add_argument("--timeout-plan", default="")
    g.add_argument("--seconds", default="?")
    g.add_argument("--build-id", default="")
    g.add_argument("--project-root", default="")
    t = sub.add_parser("tap")
    t.add_argument("--label", required=True)
    t.add_argument("--tap", required=True)
    t.add_argument("--results", required=True)
    t.add_argument("--expect", default="")
    t.add_argument("--id-prefix", default="")
    t.add_argument("--note", action="append", default=[])
    c = sub.add_parser("cargo")
    c.add_argument("--label", required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--rc", type=int, required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--note", action="append", default=[])
    s = sub.add_parser("total")
    s.add_argument("--logs", default="")
    s.add_argument("files", nargs="*")
    a = ap.parse_args()
    return {"guest": cmd_guest, "tap": cmd_tap, "cargo": cmd_cargo, "total": cmd_total}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
