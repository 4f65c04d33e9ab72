package dev.duet.example.call

import dev.duet.CallStats
import dev.duet.CandidateType
import org.junit.Assert.assertEquals
import org.junit.Test

class StatsTextTest {
    private fun stats(width: UInt = 640u, height: UInt = 480u, rtt: Double? = 23.4) = CallStats(
        sentWidth = 640u, sentHeight = 480u, sentFps = 30.0,
        receivedWidth = width, receivedHeight = height, receivedFps = 29.6,
        bitrateSentBps = 1_250_000.0, bitrateReceivedBps = 812_400.0,
        bytesSent = 0u, bytesReceived = 0u, packetsSent = 0u, packetsReceived = 0u, packetsLost = 0u,
        jitterMs = 0.0, rttMs = rtt,
        localCandidateType = CandidateType.HOST, remoteCandidateType = CandidateType.RELAY,
        targetBitrateBps = 0u, framesSent = 0u, framesDecoded = 0u, audioPacketsSent = 0u, audioFramesDecoded = 0u,
        qualityLocal = 5u, qualityRemote = 5u,
    )

    @Test
    fun formatsTheOverlay() {
        assertEquals("640×480 · 30 fps\n↓ 812 kbps  ↑ 1.3 Mbps\nRTT 23 ms · host ↔ relay", StatsText.format(stats()))
    }

    @Test
    fun beforeVideoAndRtt() {
        assertEquals("no video yet\n↓ 812 kbps  ↑ 1.3 Mbps\nRTT – · host ↔ relay", StatsText.format(stats(0u, 0u, null)))
    }
}
