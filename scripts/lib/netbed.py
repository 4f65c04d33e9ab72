"""The network test bed: caller, callee and server each in a network namespace of their own,
joined by a router namespace whose link to the caller can be impaired both ways. Used by
bench/network and scripts/test-network; standard library only; needs root.

    caller (10.77.3.2) --- router --- server (10.77.1.2)
                             |
                          callee (10.77.2.2)

Policy routing in the router sends every packet to or from the caller through a TUN device
read by scripts/lib/impairer.py (loss, delay, jitter, reordering, blackout; this kernel has
no sch_netem). `tbf` on both ends of the caller's link caps its rate with a queue. A
blackout takes the router's end of the caller's link down and up again (the caller keeps
its address); an address change gives the caller 10.77.4.2 and removes 10.77.3.2.

Names are `duetnb-<pid>-<role>`, so parallel beds never meet, and a bed is always torn down
when its `with` block ends, by an exception, ctrl-c or SIGTERM. A bed whose process was
killed outright is removed by the next one (its pid is gone).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "duetnb-"
ROLES = ("router", "server", "callee", "caller")
SERVER_IP = "10.77.1.2"
CALLEE_IP = "10.77.2.2"
CALLER_IP = "10.77.3.2"
CALLER_NEW_IP = "10.77.4.2"
CALLER_SUBNETS = "10.77.3.0/24,10.77.4.0/24"
TUN = "imp0"
# The impairer's longest life. It also ends when its owner's end of its stdin closes; this
# bounds it even if that never happens.
IMPAIRER_MAX_SECONDS = 3600


class BedError(RuntimeError):
    pass


def require_root():
    if os.geteuid() != 0:
        sys.exit("the network test bed needs root (it creates network namespaces); "
                 "run as root, e.g. sudo " + " ".join(sys.argv))


def run(*args, check=True):
    """Runs one command of the bed's setup; a failure says which and why."""
    out = subprocess.run(args, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise BedError(f"{' '.join(args)}: {out.stderr.strip() or out.returncode}")
    return out


def remove_stale_beds():
    """Removes beds whose creating process is gone (killed before it could clean up)."""
    out = run("ip", "netns", "list", check=False).stdout
    for name in re.findall(r"^(" + PREFIX + r"(\d+)-\w+)", out, re.M):
        ns, pid = name
        if not os.path.exists(f"/proc/{pid}"):
            kill_namespace_processes(ns)
            run("ip", "netns", "del", ns, check=False)


def kill_namespace_processes(ns):
    """SIGKILLs what still runs in one of the bed's own namespaces: only processes the bed
    started live there."""
    out = run("ip", "netns", "pids", ns, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class Bed:
    """One bed; a context manager. `ns[role]` names each namespace."""

    def __init__(self, seed=1):
        require_root()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.ns = {role: f"{self.tag}-{role}" for role in ROLES}
        self.seed = seed
        self.impairer = None
        self.capped = False
        self.created = []

    # ---- lifetime

    def __enter__(self):
        self._old_term = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            remove_stale_beds()
            self._create()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()
        signal.signal(signal.SIGTERM, self._old_term)
        return False

    def teardown(self):
        if self.impairer and self.impairer.poll() is None:
            try:
                self.impairer.stdin.close()
                self.impairer.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                self.impairer.kill()
                self.impairer.wait()
        for ns in reversed(self.created):
            kill_namespace_processes(ns)
            run("ip", "netns", "del", ns, check=False)
        self.created = []

    def exists(self):
        out = run("ip", "netns", "list", check=False).stdout
        return any(ns in out for ns in self.ns.values())

    # ---- construction

    def _ip(self, role, *args):
        return run("ip", "-n", self.ns[role], *args)

    def _sysctl(self, role, key, value):
        run("ip", "netns", "exec", self.ns[role], "sh", "-c",
            f"echo {value} > /proc/sys/{key.replace('.', '/')}")

    def _create(self):
        for role in ROLES:
            run("ip", "netns", "add", self.ns[role])
            self.created.append(self.ns[role])
            self._ip(role, "link", "set", "lo", "up")
        for role, router_end, subnet in (("server", "vsrv", "10.77.1"),
                                          ("callee", "vans", "10.77.2"),
                                          ("caller", "vcal", "10.77.3")):
            self._ip("router", "link", "add", router_end, "type", "veth", "peer", "name",
                     "eth0", "netns", self.ns[role])
            self._ip("router", "addr", "add", f"{subnet}.1/24", "dev", router_end)
            self._ip("router", "link", "set", router_end, "up")
            self._ip(role, "addr", "add", f"{subnet}.2/24", "dev", "eth0")
            self._ip(role, "link", "set", "eth0", "up")
            self._ip(role, "route", "add", "default", "via", f"{subnet}.1")
        # The caller's second network, for the address change.
        self._ip("router", "addr", "add", "10.77.4.1/24", "dev", "vcal")
        self._sysctl("caller", "net.ipv4.conf.all.promote_secondaries", 1)
        self._route_through_impairer()

    def _route_through_impairer(self):
        self._sysctl("router", "net.ipv4.ip_forward", 1)
        # Packets the impairer writes back arrive on the TUN device with the caller's (or its
        # peers') addresses; reverse-path filtering would drop them.
        for conf in ("all", "default"):
            self._sysctl("router", f"net.ipv4.conf.{conf}.rp_filter", 0)
        self._ip("router", "tuntap", "add", "dev", TUN, "mode", "tun")
        self._sysctl("router", f"net.ipv4.conf.{TUN}.rp_filter", 0)
        self._ip("router", "link", "set", TUN, "up")
        # From the caller: everything to the impairer. To the caller: from the others' links.
        self._ip("router", "route", "add", "default", "dev", TUN, "table", "100")
        for subnet in CALLER_SUBNETS.split(","):
            self._ip("router", "route", "add", subnet, "dev", TUN, "table", "101")
        self._ip("router", "rule", "add", "iif", "vcal", "lookup", "100", "pref", "100")
        for link in ("vsrv", "vans"):
            self._ip("router", "rule", "add", "iif", link, "lookup", "101", "pref", "101")
        self.impairer = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["router"], sys.executable,
             os.path.join(HERE, "impairer.py"), "--max-seconds", str(IMPAIRER_MAX_SECONDS),
             TUN, CALLER_SUBNETS, str(self.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.impairer.stdout.readline()
        if "ready" not in ready:
            raise BedError(f"the impairer did not start: {ready!r}")

    # ---- running things in it

    def exec_prefix(self, role):
        return ["ip", "netns", "exec", self.ns[role]]

    # ---- impairments of the caller's link

    def impair(self, **condition):
        """loss (0-1), delay_ms, jitter_ms, reorder (0-1), reorder_ms, blackout,
        lose_dtls_flight: both ways, or only `direction` ("down" to the caller, "up")."""
        self.impairer.stdin.write(json.dumps(condition) + "\n")
        self.impairer.stdin.flush()

    def clear(self):
        self.impair(loss=0, delay_ms=0, jitter_ms=0, reorder=0, blackout=False)

    def impairer_stats(self):
        """Packets passed and dropped each way so far."""
        self.impairer.stdin.write('{"stats": true}\n')
        self.impairer.stdin.flush()
        return json.loads(self.impairer.stdout.readline())

    def cap(self, kbit, queue_ms=300):
        """A token-bucket rate cap with a queue of `queue_ms`, both ways on the caller's link."""
        for role, dev in (("router", "vcal"), ("caller", "eth0")):
            run("tc", "-n", self.ns[role], "qdisc", "replace", "dev", dev, "root", "tbf",
                "rate", f"{kbit}kbit", "burst", "4kb", "latency", f"{queue_ms}ms")
        self.capped = True

    def uncap(self):
        for role, dev in (("router", "vcal"), ("caller", "eth0")):
            run("tc", "-n", self.ns[role], "qdisc", "del", "dev", dev, "root")
        self.capped = False

    def link_down(self):
        """The caller's link goes dead; its own interface and address stay, as when a radio
        loses its network."""
        self._ip("router", "link", "set", "vcal", "down")

    def link_up(self):
        self._ip("router", "link", "set", "vcal", "up")

    def blackout(self, seconds):
        self.link_down()
        time.sleep(seconds)
        self.link_up()

    def change_caller_address(self):
        """The caller moves to another network: the new address first, then the old one and
        its route go, as when a phone leaves Wi-Fi for cellular."""
        self._ip("caller", "addr", "add", f"{CALLER_NEW_IP}/24", "dev", "eth0")
        self._ip("caller", "addr", "del", f"{CALLER_IP}/24", "dev", "eth0")
        self._ip("caller", "route", "replace", "default", "via", "10.77.4.1")

    def caller_addresses(self):
        out = self._ip("caller", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return re.findall(r"inet (\S+)/", out)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
