"""Mutation score per module from mutmut's results in `mutants/` (run by `./run mutants`).

score = (killed + timed out) / (mutants - equivalent - db); "raw" divides by every mutant.
`equivalent` are the mutants listed in EQUIVALENT below, each with the reason no test can tell
it from the original; `db` those in the functions of DATABASE_BOUND, which only the integration
tests against PostgreSQL reach (mutation runs use the unit tests only). Any other mutant no test
reaches counts as a survivor. Exits 1 when a module scores under `--min` (default 90).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_K = "ywmessaging.messaging.keywords."
_P = "ywmessaging.messaging.pacing."
_S = "ywmessaging.messaging.schedule."
_B = "ywmessaging.tenants.breaker."
_PH = "ywmessaging.church.phones."
_T = "ywmessaging.auth.throttle."
_UNREACHABLE = "the message of a raise that no valid input reaches"
_NEVER_READ = "an initial value that is assigned again before anything reads it"

# mutant name → why no input can tell it from the original (README "Testing" sums them up).
# Names are mutmut's and change when the function changes: the script reports stale ones.
EQUIVALENT: dict[str, str] = {
    _K + "x__edge__mutmut_5": '"PS" → "XXPSXX": no Unicode category starts with X',
    _P + "xǁTokenBucketǁdelay__mutmut_12": "with a token in hand (1 - tokens) / rate <= 0, "
        "and the answer is max(wait, blocked) with blocked >= 0",
    _P + "xǁTokenBucketǁdelay__mutmut_15": "as delay__mutmut_12 (tokens == 1 gives wait 0)",
    _P + "xǁTokenBucketǁdelay__mutmut_16": "as delay__mutmut_12 (1 <= tokens < 2 gives <= 0)",
    _P + "xǁPacerǁpause__mutmut_10": "the church's bucket is paused to the same instant and "
        "every reservation passes through it: no answer of Pacer changes",
    _S + "x_exists__mutmut_3": "a round trip through the machine's zone instead of UTC lands "
        "on the same instant",
    _S + "x_resolve_local__mutmut_8": "one more minute of search matters only for a gap "
        "longer than 24 h; no zone has one",
    _S + "x_resolve_local__mutmut_27": "the candidate is naive + timedelta, and datetime "
        "arithmetic always gives fold=0",
    _S + "x_resolve_local__mutmut_29": _UNREACHABLE,
    _S + "x_resolve_local__mutmut_30": _UNREACHABLE,
    _S + "x_resolve_local__mutmut_31": _UNREACHABLE,
    _S + "x_next_occurrence__mutmut_7": "starting the search two days back instead of one: "
        "the extra day is before `after` and skipped; 400 days still cover a year",
    _S + "x_next_occurrence__mutmut_21": _UNREACHABLE,
    _S + "x_next_occurrence__mutmut_22": _UNREACHABLE,
    _S + "x_next_occurrence__mutmut_23": _UNREACHABLE,
    _S + "x_previous_occurrence__mutmut_7": "as next_occurrence__mutmut_7, the other way",
    _S + "x_plan_run__mutmut_13": "latest > due instead of >=: when equal both branches give "
        "the same instant",
    _S + "x_quiet_until__mutmut_16": "start <= end instead of <: start == end returned first",
    _S + "x_quiet_until__mutmut_22": "end < wall instead of <=: inside the window the wall "
        "clock never reads the end",
    _S + "x_quiet_until__mutmut_34": "until < now instead of <=: the end is never now (now is "
        "inside [start, end))",
    _S + "x_month_start__mutmut_15": "time(0) is time(0, 0)",
    _S + "x_month_start__mutmut_16": "time(0, ) is time(0, 0)",
    _PH + "x_normalize_phone__mutmut_44": _UNREACHABLE + " (phonenumbers' E.164 of a valid "
        "number always matches the schema's pattern)",
    _PH + "x_normalize_phone__mutmut_45": "as x_normalize_phone__mutmut_44",
    _PH + "x_normalize_phone__mutmut_46": "as x_normalize_phone__mutmut_44",
    _PH + "x_normalize_phone__mutmut_47": "as x_normalize_phone__mutmut_44",
    _T + "x_client_net__mutmut_11": "strict=None is as false as strict=False",
    _T + "xǁThrottleǁ_judge__mutmut_36": ">= instead of >: an equal verdict replaces an equal "
        "one (Verdict is a frozen value)",
    _B + "xǁBreakerǁ__init____mutmut_9": _NEVER_READ + " (opened_at: read only when not "
        "closed, and only _open leaves closed, setting it)",
    _B + "xǁBreakerǁ__init____mutmut_10": "as __init____mutmut_9",
    _B + "xǁBreakerǁ__init____mutmut_11": _NEVER_READ + " (_trial: read only when not closed; "
        "_open clears it)",
    _B + "xǁBreakerǁ__init____mutmut_12": _NEVER_READ + " (_trial_started: read only while a "
        "trial is taken, which sets it)",
    _B + "xǁBreakerǁ__init____mutmut_13": "as __init____mutmut_12",
    _B + "xǁBreakerǁ__init____mutmut_17": _NEVER_READ + " (last_failure_at: every breaker is "
        "made by the record_failure or trip that sets it)",
    _B + "xǁBreakerǁ__init____mutmut_18": "as __init____mutmut_17",
    _B + "xǁBreakerǁrecord_success__mutmut_6": "_trial of a closed breaker is never read "
        "before _open clears it",
    _B + "xǁBreakerBoardǁrecord_success__mutmut_23": "a breaker that is not closed has "
        "failures > 0 (only record_failure and trip open one, both counting), so the "
        "failure count alone decides",
}

# Functions that need a database (or are called only by those that do): the integration tests
# against PostgreSQL measure them. Mutant names are the function's name + "__mutmut_N".
DATABASE_BOUND = (
    _PH + "x_to_e164__",
    _T + "x__transaction__",
    *(_T + f"xǁThrottleǁ{name}__" for name in (
        "reserve", "_try_reserve", "_wake", "failed", "release", "succeeded", "_settle",
        "clear", "limit")),
)

KILLED = {1, 3, 24, -24, 36, 152, 255, 37}  # killed, pytest error, timeouts, type check
NO_TESTS = {5, 33}


def main(argv: list[str] | None = None) -> int:
    """Print the table; the exit status says whether every module reached `--min`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("modules", nargs="*", help="module name ends to show (default: all)")
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable score (%%)")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    args = parser.parse_args(argv)
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no results in mutants/: run ./run mutants first", file=sys.stderr)
        return 2
    print(f"{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'no test':>7} "
          f"{'equiv':>5} {'db':>4} {'raw':>6} {'score':>6}")
    stale = set(EQUIVALENT)
    ok = True
    for meta in metas:
        module = meta.as_posix().removeprefix("mutants/src/ywmessaging/").removesuffix(".py.meta")
        if args.modules and not any(module.endswith(m) for m in args.modules):
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        stale -= set(codes)
        equivalent = [k for k in codes if k in EQUIVALENT]
        db = [k for k in codes if k.startswith(DATABASE_BOUND)]
        live = {k: v for k, v in codes.items() if k not in EQUIVALENT and k not in db}
        killed = sum(v in KILLED for v in live.values())
        untested = [k for k, v in live.items() if v in NO_TESTS]
        survived = [k for k, v in live.items() if v not in KILLED and v not in NO_TESTS]
        score = 100.0 * killed / len(live) if live else 100.0
        raw = 100.0 * killed / len(codes) if codes else 100.0  # nothing set aside
        ok = ok and score >= args.min
        print(f"{module:32} {len(codes):>7} {killed:>6} {len(survived):>8} {len(untested):>7} "
              f"{len(equivalent):>5} {len(db):>4} {raw:>5.1f}% {score:>5.1f}%")
        if args.survivors:
            for name in survived + untested:
                print(f"    {name}{' (no test)' if name in untested else ''}")
    if stale and not args.modules:
        print(f"EQUIVALENT names no mutant any more (renumbered? check them): {sorted(stale)}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
