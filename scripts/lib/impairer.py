#!/usr/bin/env python3
"""A userspace network impairer: what `tc netem` would do, for a kernel without sch_netem.

Runs in the test bed's router namespace (scripts/lib/netbed.py), attached to a TUN device
that policy routing sends one side's traffic through, both ways. Each IPv4 packet read from
the device is dropped, or written back to it after a delay; written back, the kernel routes
it on as if it had just arrived. Standard library only.

    impairer.py DEVICE SUBNET[,SUBNET...] SEED

A packet to one of the SUBNETs (the impaired side's addresses) is going "down" to that
side; any other is going "up" from it. Each direction has its own seeded random stream, so
two runs with the same seed and the same traffic make the same choices.

Conditions are set on stdin, one JSON object a line, and apply to packets read from then on:
    {"loss": 0.05, "delay_ms": 50, "jitter_ms": 10, "reorder": 0.01, "reorder_ms": 20,
     "blackout": false}
    {"lose_dtls_flight": true, "delay_dtls_flight_ms": 300}
    {"lose_dtls_flights": true}
A "direction" key ("down" or "up") applies a line to that direction alone.
Keys left out keep their value; the initial condition passes everything at once.
`lose_dtls_flight` loses, once, the first DTLS flight read in a direction that carries a
Certificate or ClientKeyExchange message from that direction's sender: the datagram, and
every DTLS datagram after it that way for the next FLIGHT_SECONDS (a whole flight), as a
lossy link loses a handshake flight; `delay_dtls_flight_ms` holds that flight back as long
instead (its retransmissions, later, are not held). `lose_dtls_flights` loses every such
flight, each repeat included: a handshake that cannot complete that way while ICE's checks
pass. Only direct (not TURN-relayed) DTLS is seen.
`blackout` drops everything. A line {"stats": true} prints the counters, one JSON line on
stdout; so does the end. Besides what passed and what was dropped, each direction counts
the STUN binding requests it read (ICE's connectivity checks, sent directly: those through
a TURN relay are inside TURN messages), whatever became of them. The program ends when stdin closes (its owner went away) or after
--max-seconds, whichever is first: it never outlives the bed.
"""
import fcntl
import heapq
import ipaddress
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535
# Packets held back at once, at most: beyond it the newest is dropped (a bounded queue,
# as a real router's). 20,000 packets is over 2 s of a 10 Mbit/s stream of full packets.
MAX_HELD = 20_000
DEFAULT_MAX_SECONDS = 3600
# How long after the first datagram of a flight `lose_dtls_flight` and `delay_dtls_flight_ms`
# take every DTLS datagram.
FLIGHT_SECONDS = 0.3
DTLS_HANDSHAKE = 22
FLIGHT_MESSAGES = (11, 16)  # Certificate, ClientKeyExchange


class Direction:
    """One way through the impairer: its condition, its random stream, its counters."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = random.Random(f"{seed}-{name}")
        self.loss = 0.0
        self.delay = 0.0
        self.jitter = 0.0
        self.reorder = 0.0
        self.reorder_extra = 0.02
        self.blackout = False
        self.lose_flight = False
        self.lose_every_flight = False
        self.flight_delay = 0.0
        self.flight_until = None
        self.flight_action = None
        self.dtls_flights_lost = 0
        self.dtls_flights_delayed = 0
        self.passed = 0
        self.dropped = 0
        self.overflow = 0
        self.binding_requests = 0

    def configure(self, c):
        self.loss = float(c.get("loss", self.loss))
        self.delay = float(c.get("delay_ms", self.delay * 1000)) / 1000
        self.jitter = float(c.get("jitter_ms", self.jitter * 1000)) / 1000
        self.reorder = float(c.get("reorder", self.reorder))
        self.reorder_extra = float(c.get("reorder_ms", self.reorder_extra * 1000)) / 1000
        self.blackout = bool(c.get("blackout", self.blackout))
        self.lose_every_flight = bool(c.get("lose_dtls_flights", self.lose_every_flight))
        self.lose_flight = bool(c.get("lose_dtls_flight", self.lose_flight)) or self.lose_every_flight
        self.flight_delay = float(c.get("delay_dtls_flight_ms", self.flight_delay * 1000)) / 1000

    def release_time(self, now):
        """When a packet read now goes on, or None to drop it. Every draw is made for
        every packet, so one knob's value never shifts another's random choices."""
        lose, jit, reo = self.rng.random(), self.rng.uniform(-1, 1), self.rng.random()
        if self.blackout or lose < self.loss:
            self.dropped += 1
            return None
        self.passed += 1
        wait = max(0.0, self.delay + jit * self.jitter)
        if reo < self.reorder:
            wait += self.reorder_extra
        return now + wait

    def count(self, packet):
        if is_binding_request(packet):
            self.binding_requests += 1

    def flight_rule(self, packet, now):
        """What `lose_dtls_flight` / `delay_dtls_flight_ms` do to this packet: None (nothing),
        "lose", or the seconds to hold it back. Each acts on one flight, once."""
        if self.flight_until is not None:
            if now < self.flight_until and dtls_records(packet) is not None:
                return self.flight_action
            self.flight_until = None
        if not (self.lose_flight or self.flight_delay) or not any(
                kind == DTLS_HANDSHAKE and epoch == 0 and message in FLIGHT_MESSAGES
                for kind, epoch, message in dtls_records(packet) or ()):
            return None
        self.flight_until = now + FLIGHT_SECONDS
        if self.lose_flight:
            self.lose_flight = self.lose_every_flight
            self.dtls_flights_lost += 1
            self.flight_action = "lose"
        else:
            self.dtls_flights_delayed += 1
            self.flight_action, self.flight_delay = self.flight_delay, 0.0
        return self.flight_action

    def stats(self):
        return {"passed": self.passed, "dropped": self.dropped, "overflow": self.overflow,
                "binding_requests": self.binding_requests,
                "dtls_flights_lost": self.dtls_flights_lost,
                "dtls_flights_delayed": self.dtls_flights_delayed}


STUN_BINDING_REQUEST = b"\x00\x01"
STUN_MAGIC_COOKIE = b"\x21\x12\xa4\x42"


def udp_payload(packet):
    """An IPv4 packet's UDP payload, or None if it is not UDP."""
    if packet[9] != 17:
        return None
    return packet[(packet[0] & 0x0F) * 4 + 8:]


def dtls_records(packet):
    """(content type, epoch, first byte of the body) of each DTLS 1.2 record in a UDP
    packet, or None if it does not hold DTLS (RFC 6347: a 13-byte header, then the body;
    a handshake body starts with its message type)."""
    payload = udp_payload(packet)
    if payload is None or len(payload) < 13 or not 20 <= payload[0] <= 23 or payload[1] != 0xFE:
        return None
    records, at = [], 0
    while at + 13 < len(payload):
        kind, epoch = payload[at], int.from_bytes(payload[at + 3:at + 5], "big")
        length = int.from_bytes(payload[at + 11:at + 13], "big")
        records.append((kind, epoch, payload[at + 13]))
        at += 13 + length
    return records


def is_binding_request(packet):
    """An IPv4 UDP packet carrying a STUN binding request (RFC 5389: type 0x0001, then the
    length, then the magic cookie)."""
    payload = udp_payload(packet)
    return (payload is not None and payload[:2] == STUN_BINDING_REQUEST
            and payload[4:8] == STUN_MAGIC_COOKIE)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main(argv):
    max_seconds = DEFAULT_MAX_SECONDS
    if "--max-seconds" in argv:
        i = argv.index("--max-seconds")
        max_seconds = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 3:
        sys.exit(__doc__)
    device, subnets, seed = argv
    down_nets = [ipaddress.ip_network(s) for s in subnets.split(",")]
    tun = open_tun(device)
    down, up = Direction("down", seed), Direction("up", seed)
    held = []  # (release time, sequence, packet): a heap; sequence keeps equal times in order
    seq = 0
    stdin = sys.stdin.fileno()
    pending = b""  # a command line not yet whole
    end = time.monotonic() + max_seconds
    print(json.dumps({"ready": device}), flush=True)

    def stats():
        print(json.dumps({"down": down.stats(), "up": up.stats(), "held": len(held)}),
              flush=True)

    while time.monotonic() < end:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, packet = heapq.heappop(held)
            try:
                os.write(tun, packet)
            except OSError:
                pass  # a route gone for a moment (a link down): the packet is lost
        timeout = min(max(0.0, held[0][0] - now), 0.5) if held else 0.5
        readable, _, _ = select.select([tun, stdin], [], [], timeout)
        if stdin in readable:
            # Read from the descriptor itself: sys.stdin's buffer could hold a second line
            # that select() no longer reports.
            chunk = os.read(stdin, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                command = json.loads(line)
                if command.get("stats"):
                    stats()
                for d in (down, up):
                    if command.get("direction", d.name) == d.name:
                        d.configure(command)
            continue
        if tun not in readable:
            continue
        # Reads what is there now, bounded so that delayed packets still go out on time.
        for _ in range(256):
            try:
                packet = os.read(tun, MAX_PACKET)
            except BlockingIOError:
                break
            if len(packet) < 20 or packet[0] >> 4 != 4:
                continue  # IPv4 only: the bed has no IPv6 addresses
            dst = ipaddress.IPv4Address(packet[16:20])
            d = down if any(dst in n for n in down_nets) else up
            d.count(packet)
            flight = d.flight_rule(packet, time.monotonic())
            if flight == "lose":
                d.dropped += 1
                continue
            at = d.release_time(time.monotonic())
            if at is not None and flight:
                at += flight
            if at is None:
                continue
            if len(held) >= MAX_HELD:
                d.overflow += 1
                continue
            heapq.heappush(held, (at, seq, packet))
            seq += 1
    stats()


if __name__ == "__main__":
    main(sys.argv[1:])
