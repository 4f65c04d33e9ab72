// The stats overlay's line.

import Duet
import DuetExampleKit
import XCTest

final class StatsFormatTests: XCTestCase {
    private func stats(
        width: UInt32 = 640, height: UInt32 = 480, fps: Double = 29.7, received: Double = 1_234_567,
        rtt: Double? = 12.3, local: CandidateType? = .host, remote: CandidateType? = .relay
    ) -> CallStats {
        CallStats(
            sentWidth: 640, sentHeight: 480, sentFps: 30, receivedWidth: width, receivedHeight: height,
            receivedFps: fps, bitrateSentBps: 800_000, bitrateReceivedBps: received, bytesSent: 0,
            bytesReceived: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, jitterMs: 0, rttMs: rtt,
            localCandidateType: local, remoteCandidateType: remote, targetBitrateBps: 0, framesSent: 0,
            framesDecoded: 0, audioPacketsSent: 0, audioFramesDecoded: 0, qualityLocal: 5, qualityRemote: 5)
    }

    func testTheLineHasSizeRateBitrateRoundTripAndPath() {
        XCTAssertEqual(StatsFormat.line(stats()), "640×480 · 30 fps · 1.2 Mb/s · RTT 12 ms · relay")
        XCTAssertEqual(
            StatsFormat.line(stats(received: 850_400, rtt: nil, remote: .host)), "640×480 · 30 fps · 850 kb/s · host")
        XCTAssertEqual(
            StatsFormat.line(stats(width: 0, height: 0, received: 40_000, local: nil, remote: nil)),
            "no video · 40 kb/s · RTT 12 ms")
    }

    func testBitrates() {
        XCTAssertEqual(StatsFormat.bitrate(0), "0 kb/s")
        XCTAssertEqual(StatsFormat.bitrate(999_499), "999 kb/s")
        XCTAssertEqual(StatsFormat.bitrate(1_000_000), "1.0 Mb/s")
        XCTAssertEqual(StatsFormat.bitrate(12_345_678), "12.3 Mb/s")
    }

    func testThePathIsRelayWhenEitherSideRelays() {
        XCTAssertEqual(StatsFormat.path(local: .relay, remote: .host), "relay")
        XCTAssertEqual(StatsFormat.path(local: .serverReflexive, remote: .host), "srflx")
        XCTAssertEqual(StatsFormat.path(local: .peerReflexive, remote: nil), "prflx")
        XCTAssertNil(StatsFormat.path(local: nil, remote: nil))
    }
}
