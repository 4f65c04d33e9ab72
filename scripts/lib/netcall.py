"""Calls on the network test bed (scripts/lib/netbed.py): `duet serve` in the server's
namespace, `duet answer` (bob) in the callee's, `duet call` (alice) in the caller's, all real
processes on real sockets; what each side reported, reduced to the figures bench/network
prints and scripts/test-network checks. Standard library only.
"""
import statistics
import subprocess
import time

import duet_cli
import netbed

SIGNALING_PORT = 7480
TURN_PORT = 3478
STEP = 20  # seconds any one step outside the call itself may take
# A call whose media is lost ends by itself about 30 s later ("media failed"): the bound on
# how long after its planned end a caller may take to exit.
CALL_END_GRACE = 60
# A second of received video at this rate or more counts as full rate (the CLI sends 30 fps).
FULL_RATE_FPS = 25


class Server(duet_cli.Process):
    """`duet serve` with its embedded TURN, in the bed's server namespace."""

    def __init__(self, bed, duet):
        ip = netbed.SERVER_IP
        self.url = f"http://{ip}:{SIGNALING_PORT}"
        super().__init__([*bed.exec_prefix("server"), duet, "serve", "--listen",
                          f"{ip}:{SIGNALING_PORT}", "--turn-listen", f"{ip}:{TURN_PORT}",
                          "--data-dir", duet_cli.scratch_data_dir()],
                         "serve")
        self.wait_line("listening on", timeout=STEP)
        self.wait_line("TURN relay on udp", timeout=STEP)
        self._metrics_cmd = [*bed.exec_prefix("server"), "python3", "-c",
                             "import sys, urllib.request; sys.stdout.write(urllib.request"
                             f".urlopen('{self.url}/metrics', timeout=5).read().decode())"]

    def turn_allocations(self):
        """The embedded TURN server's allocations now (its /metrics gauge); None if unread."""
        done = subprocess.run(self._metrics_cmd, capture_output=True, text=True, timeout=STEP)
        for line in done.stdout.splitlines():
            if line.startswith("duet_turn_allocations "):
                return int(line.split()[1])
        return None


def _answer(bed, duet, url, stay, extra=()):
    answer = duet_cli.Client(duet, url, "answer", "bob", "--seconds", str(stay), *extra,
                             wrap=bed.exec_prefix("callee"))
    answer.wait_event("connected", STEP)
    return answer


def _call(bed, duet, url, seconds, relay):
    extra = ["--relay"] if relay else []
    return duet_cli.Client(duet, url, "call", "alice", "--to", "bob", "--seconds",
                           str(seconds), *extra, wrap=bed.exec_prefix("caller"))


def setup_try(bed, duet, url, relay, timeout, answer_extra=()):
    """One call set up and hung up at once. Returns (ms, why, accept_ms): the caller's
    call()->first frame in ms and the callee's accept()->first frame, or None, how far each
    side got, and None if either saw no frame within `timeout` seconds of the caller signing
    in (signing in over a lossy link is not timed here). `answer_extra` goes to the callee's
    `duet answer` (say, `--answer-after-ms 1500` to let it ring, `--no-pre-connect`)."""
    answer = _answer(bed, duet, url, 60, answer_extra)
    call = _call(bed, duet, url, 1, relay)
    try:
        try:
            call.wait_event("connected", STEP)
        except TimeoutError:
            return None, "the caller did not sign in", None
        try:
            frame = call.wait_event("first_frame", timeout)
            answered = answer.wait_event("first_frame", timeout)
        except TimeoutError:
            for side_ in (call, answer):
                _drain(side_)
            return (None, f"caller reached {reached(call.events)}, callee "
                    f"{reached(answer.events)}", None)
        call.finish(STEP + CALL_END_GRACE)
        return frame["ms"], None, answered["ms"]
    finally:
        call.cleanup()
        answer.cleanup()


def _drain(client, seconds=0.3):
    """Reads the events a client has printed so far."""
    deadline = time.monotonic() + seconds
    while client.next_event(deadline) is not None:
        pass


def reached(events):
    """The last step of a call a side's events show, for a report of one that failed."""
    steps = [e.get("status") if e.get("event") == "response" else e.get("event")
             for e in events if e.get("event") in
             ("connected", "called", "response", "stream", "first_frame")]
    errors = [e.get("message") for e in events if e.get("event") == "error"]
    return (steps[-1] if steps else "nothing") + (f" (error: {errors[0]})" if errors else "")


def full_call(bed, duet, url, seconds, relay=False, actions=(), first_frame_timeout=30):
    """One call of `seconds` once media flows. `actions` are (seconds after the caller's
    first frame, name, function): each runs then, in order, and its start and end are
    marked (wall clock, ms). Returns {"caller": side, "callee": side, "marks": {...}}."""
    answer = _answer(bed, duet, url, seconds * 3 + CALL_END_GRACE)
    call = _call(bed, duet, url, seconds, relay)
    marks = {}
    try:
        try:
            call.wait_event("first_frame", first_frame_timeout)
        except TimeoutError:
            call.interrupt()
        else:
            t0 = time.monotonic()
            for offset, name, action in sorted(actions, key=lambda a: a[0]):
                time.sleep(max(0.0, t0 + offset - time.monotonic()))
                start = time.time() * 1000
                action()
                marks[name] = (start, time.time() * 1000)
        caller_exit, caller_events = _finish(call, seconds + CALL_END_GRACE)
        callee_exit, callee_events = _finish(answer, STEP + CALL_END_GRACE)
        caller, callee = side(caller_events), side(callee_events)
        # A side with no summary ended abnormally: what it printed last says why.
        for s, client, code in ((caller, call, caller_exit), (callee, answer, callee_exit)):
            if not s["ok"]:
                s["exit"], s["stderr"] = code, client.stderr_tail(8)
    finally:
        call.cleanup()
        answer.cleanup()
    return {"caller": caller, "callee": callee, "marks": marks}


def _finish(client, timeout):
    try:
        return client.finish(timeout)
    except TimeoutError:
        client.interrupt()
        return client.finish(STEP)


def side(events):
    """One side's figures from its events."""
    summary = next((e for e in reversed(events) if e.get("event") == "summary"), {})
    stats = [e for e in events if e.get("event") == "stats"]
    video = summary.get("video") or {}
    span_s = (video.get("span_ms") or 0) / 1000
    verified = summary.get("frames_verified") or 0
    kbps = [s["kbps_sent"] for s in stats if s.get("kbps_sent") is not None]
    return {
        "ok": bool(summary.get("ok")),
        "first_frame_ms": summary.get("first_frame_ms"),
        "sent": summary.get("frames_sent"),
        # What reached the screen: the decoder's output, counted at the very end (the
        # engine's own count is from the last per-second stats).
        "decoded": summary.get("frames_received"),
        "engine_decoded": summary.get("frames_decoded"),
        "received": summary.get("frames_received"),
        "verified": verified,
        "corrupted": summary.get("frames_corrupted"),
        "freezes": video.get("freezes_over_500ms"),
        "freeze_list": video.get("freezes") or [],
        "longest_gap_ms": video.get("longest_verified_gap_ms"),
        "fps": verified / span_s if span_s > 0 else 0.0,
        "kbps_sent": statistics.median(kbps) if kbps else None,
        "stats": stats,
        "errors": [e.get("message") for e in events if e.get("event") == "error"],
        "closed": next((e.get("reason") for e in events if e.get("event") == "closed"), None),
        # The signaling connection's changes: (wall clock ms, "reconnecting"/"connected"/...).
        "signaling": [(e.get("unix_ms"), e.get("state")) for e in events
                      if e.get("event") == "signaling"],
        "reached": reached(events),
    }


def recovery_ms(s, at_ms):
    """How long after `at_ms` (wall clock) verified video came again: 0 if it was flowing
    then, None if it never came back before the call ended."""
    for f in s["freeze_list"]:
        start, end = f["from_unix_ms"], f["from_unix_ms"] + f["ms"]
        # A freeze that was on at that moment, or began just after it (the last frame
        # before it had just been shown).
        if start <= at_ms + 1000 and end >= at_ms:
            return None if f["until_end"] else max(0.0, end - at_ms)
    return 0.0


def full_rate_ms(s, at_ms):
    """How long after `at_ms` a whole second of verified video at FULL_RATE_FPS or more
    ended; None if none did."""
    pts = [(e["unix_ms"], e["frames_verified"]) for e in s["stats"] if "unix_ms" in e]
    for (t1, v1), (t2, v2) in zip(pts, pts[1:]):
        if t1 >= at_ms - 200 and t2 > t1 and (v2 - v1) * 1000 / (t2 - t1) >= FULL_RATE_FPS:
            return t2 - at_ms
    return None


def kbps_between(s, start_ms, end_ms):
    """Median of the per-second send rates reported between two moments."""
    xs = [e["kbps_sent"] for e in s["stats"]
          if start_ms <= e.get("unix_ms", 0) <= end_ms and e.get("kbps_sent") is not None]
    return statistics.median(xs) if xs else None


def fps_between(s, start_ms, end_ms):
    """Verified frames a second between two moments, from the per-second reports."""
    pts = [(e["unix_ms"], e["frames_verified"]) for e in s["stats"]
           if start_ms <= e.get("unix_ms", 0) <= end_ms]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) * 1000 / (pts[-1][0] - pts[0][0])


def signaling_lost_ms(s, at_ms):
    """How long after `at_ms` (wall clock) this side's signaling noticed its connection was
    lost (its first "reconnecting" from then on), and how long until it was connected again;
    None for what did not happen before the call ended."""
    lost = next((t for t, state in s["signaling"] if state == "reconnecting" and t >= at_ms),
                None)
    if lost is None:
        return None, None
    back = next((t for t, state in s["signaling"] if state == "connected" and t >= lost), None)
    return lost - at_ms, (None if back is None else back - at_ms)
