#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn one guest run's logs into a single TAP stream and a verdict.

Inputs: the guest's TAP channel (suites framed by "# suite: X" and
"# exit: X RC"), the console log (kernel log: KUnit results and splats),
the host-side checks, and an expectations file of shell globs over
"suite:test" (or "plan:suite:test") names that are expected to fail (XFAIL).

Failures: a "not ok" result, a suite that exits non-zero or reports fewer
results than its plan, a missing "# done" (the guest died), a timeout, a
KUnit case that fails, and any kernel splat in the console log.
"""
import argparse
import fnmatch
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
RESULT_RE = re.compile(r"^(not )?ok \d+ (?:- )?(.*?)(?:\s+#\s*(.*))?$")


def parse_guest_tap(path):
    """Yields (name, ok, directive, note) for the guest TAP channel."""
    results = []
    suite = None
    plan = {}
    counts = {}
    exits = {}
    done = False
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        lines = []
    for raw in lines:
        line = raw.rstrip("\r")
        if line.startswith("# suite: "):
            suite = line[len("# suite: "):].split()[0]
            counts.setdefault(suite, 0)
            continue
        if line.startswith("# exit: "):
            parts = line[len("# exit: "):].split()
            if len(parts) == 2:
                exits[parts[0]] = int(parts[1])
            continue
        if line.startswith("# done"):
            done = True
            continue
        m = re.match(r"^1\.\.(\d+)", line)
        if m and suite is not None:
            plan[suite] = plan.get(suite, 0) + int(m.group(1))
            continue
        m = RESULT_RE.match(line)
        if m and suite is not None:
            counts[suite] += 1
            directive = (m.group(3) or "").strip()
            results.append((f"{suite}:{m.group(2).strip()}", m.group(1) is None, directive, ""))
    for s, n in counts.items():
        if s in plan and n < plan[s]:
            results.append((f"{s}:(incomplete)", False, "",
                            f"{n} of {plan[s]} planned results"))
        if s not in exits:
            results.append((f"{s}:(exit)", False, "", "suite never finished"))
        elif exits[s] != 0 and all(ok for (nm, ok, _, _) in results if nm.startswith(s + ":")):
            results.append((f"{s}:(exit)", False, "", f"exit status {exits[s]}"))
    return results, done


def suite_times(path):
    """(suite with arguments, seconds) from the guest's "# time:" lines."""
    out = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith("# time: "):
            parts = line[len("# time: "):].split()
            try:
                out.append((" ".join(parts[:-2]), float(parts[-1]) - float(parts[-2])))
            except (ValueError, IndexError):
                pass
    return out


def parse_kunit(path):
    """KUnit cases from the console log, as (name, ok, directive, note)."""
    results = []
    suite = None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return results
    for raw in lines:
        line = PRINTK_RE.sub("", raw.rstrip("\r"))
        m = re.match(r"^\s*# Subtest: (\S+)", line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r"^( {4,})(not )?ok \d+ (\S+)(?:\s+#\s*(.*))?$", line)
        if m and suite:
            results.append((f"kunit.{suite}:{m.group(3)}", m.group(2) is None,
                            (m.group(4) or "").strip(), ""))
    return results


def scan_splats(path):
    out = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return out
    for raw in lines:
        line = PRINTK_RE.sub("", raw.rstrip("\r"))
        if SPLAT_RE.search(line):
            out.append(line.strip())
    return out


def load_xfail(path):
    pats = []
    try:
        for line in open(path):
            line = line.split("#", 1)[0].strip()
            if line:
                pats.append(line)
    except OSError:
        pass
    return pats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--plan", default="")
    ap.add_argument("--expect", required=True)
    ap.add_argument("--tap", required=True)
    ap.add_argument("--console", required=True)
    ap.add_argument("--hostcheck", required=True)
    ap.add_argument("--timeout", default="")
    ap.add_argument("--seconds", default="?")
    ap.add_argument("--summary", required=True)
    a = ap.parse_args()

    results, done = parse_guest_tap(a.tap)
    hc, _ = parse_guest_tap(a.hostcheck)
    results += hc
    results += parse_kunit(a.console)
    if a.timeout:
        results.append(("runner:(timeout)", False, "", a.timeout))
    elif not done:
        results.append(("runner:(guest finished)", False, "", "the guest stopped before '# done'"))
    splats = scan_splats(a.console)
    results.append(("runner:no kernel splat", not splats, "",
                    "; ".join(splats[:5]) + (" ..." if len(splats) > 5 else "")))

    xfail = load_xfail(a.expect)
    passed = failed = xf = skipped = 0
    print(f"# {a.label} ({a.seconds}s in the guest)")
    for name, secs in suite_times(a.tap):
        print(f"# time: {name}: {secs:.1f}s")
    print(f"1..{len(results)}")
    for i, (name, ok, directive, note) in enumerate(results, 1):
        # A pattern matches "suite:test", or "plan:suite:test" for one plan.
        scoped = f"{a.plan}:{name}"
        expected_fail = any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(scoped, p)
                            for p in xfail)
        tag = ""
        if directive.upper().startswith("SKIP"):
            skipped += 1
            tag = f" # {directive}"
        elif ok:
            passed += 1
            if expected_fail:
                tag = " # XPASS (listed in " + a.expect.rsplit("/", 1)[-1] + ")"
        elif expected_fail:
            xf += 1
            tag = " # XFAIL"
        else:
            failed += 1
        status = "ok" if ok or expected_fail or tag.startswith(" # SKIP") else "not ok"
        print(f"{status} {i} {a.label}:{name}{tag}")
        if note:
            print(f"#   {note}")
    with open(a.summary, "w") as f:
        f.write(f"{passed} {failed} {xf} {skipped}\n")
    print(f"{a.label}: {passed} passed, {failed} failed, {xf} xfail, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
