"""The `duet` binary as processes on loopback: a server (`duet serve`, with its embedded
TURN) and clients (`duet call`, `duet answer` with --json) whose events can be awaited.
Shared by scripts/test-interop and bench/call-setup; standard library only.
"""
import atexit
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(release=False):
    """Builds the `duet` binary (incrementally) and returns its path. Not --quiet: a first
    build takes a minute or more, and cargo's crate lines are its only progress. The debug
    one comes from scripts/build-debug, which reuses the cargo stage's build (why there)."""
    if not release:
        out = subprocess.run([os.path.join(ROOT, "scripts", "build-debug")], cwd=ROOT,
                             check=True, stdout=subprocess.PIPE, text=True)
        return os.path.join(out.stdout.strip(), "duet")
    subprocess.run(["cargo", "build", "--locked", "--release", "-p", "duet-cli", "--bin", "duet"],
                   cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    target = json.loads(meta.stdout)["target_directory"]
    return os.path.join(target, "release", "duet")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child whose stdout lines are collected by a thread; stderr goes to a file kept for
    failure reports. Stopped (SIGINT, then SIGKILL) by stop()."""

    def __init__(self, args, name):
        self.name = name
        self.args = args
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = tempfile.NamedTemporaryFile("w", prefix=f"duet-{name}-", suffix=".log",
                                                  delete=False)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)  # stays at the end for later readers
                return None
            self.seen.append(line)
            return line

    def wait_line(self, contains, timeout):
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            if line is None:
                raise TimeoutError(f"{self.name}: no line containing {contains!r} within "
                                   f"{timeout} s; output so far: {self.seen[-5:]}")
            if contains in line:
                return line

    def interrupt(self):
        """Ctrl-C: `duet call` and `duet answer` hang up and exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} did not exit within {timeout} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def stderr_tail(self, n=20):
        try:
            with open(self.stderr.name) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        try:
            os.unlink(self.stderr.name)
        except OSError:
            pass


class Client(Process):
    """`duet call` or `duet answer` with --json: its events as dicts."""

    def __init__(self, duet, server_url, command, uid, *extra, wrap=()):
        """`wrap` goes before the command: e.g. `ip netns exec NS` (scripts/lib/netbed.py)."""
        super().__init__([*wrap, duet, command, "--server", server_url, "--uid", uid, "--json",
                          *extra], f"{command}-{uid}")
        self.events = []

    def next_event(self, deadline):
        line = self.next_line(deadline)
        if line is None:
            return None
        try:
            event = json.loads(line)
        except ValueError:
            return self.next_event(deadline)
        self.events.append(event)
        return event

    def wait_event(self, name, timeout, where=lambda e: True):
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("event") == name and where(e):
                return e
        while True:
            e = self.next_event(deadline)
            if e is None:
                raise TimeoutError(f"{self.name}: no {name!r} event within {timeout} s; "
                                   f"events: {[x.get('event') for x in self.events]}; "
                                   f"stderr: {self.stderr_tail(5)}")
            if e.get("event") == name and where(e):
                return e

    def finish(self, timeout):
        """Waits for the exit; returns (exit status, every event)."""
        code = self.wait(timeout)
        deadline = time.monotonic() + 2
        while self.next_event(deadline) is not None:
            pass
        return code, self.events

    def event(self, name):
        return next((e for e in self.events if e.get("event") == name), None)


def scratch_data_dir():
    """A directory for a test server's push registrations, removed when this script ends
    (so tests never write to the user's ~/.local/share)."""
    d = tempfile.mkdtemp(prefix="duet-serve-")
    atexit.register(shutil.rmtree, d, True)
    return d


class Server(Process):
    """`duet serve` on free loopback ports, TCP for signaling and UDP for its TURN relay."""

    def __init__(self, duet, *extra):
        self.port = free_port()
        self.turn_port = free_port(socket.SOCK_DGRAM)
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([duet, "serve", "--listen", f"127.0.0.1:{self.port}",
                          "--turn-listen", f"127.0.0.1:{self.turn_port}",
                          "--data-dir", scratch_data_dir(), *extra], "serve")
        self.wait_line("listening on", timeout=20)
        self.wait_line("TURN relay on udp", timeout=5)
