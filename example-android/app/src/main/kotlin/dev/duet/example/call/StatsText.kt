package dev.duet.example.call

import dev.duet.CallStats
import dev.duet.CandidateType
import java.util.Locale

/** The in-call stats overlay's text: a few lines a developer glances at. */
object StatsText {
    fun format(stats: CallStats): String {
        val video = if (stats.receivedWidth == 0u) "no video yet"
        else "${stats.receivedWidth}×${stats.receivedHeight} · ${fps(stats.receivedFps)} fps"
        val rtt = stats.rttMs?.let { "${Math.round(it)} ms" } ?: "–"
        val path = "${candidate(stats.localCandidateType)} ↔ ${candidate(stats.remoteCandidateType)}"
        return listOf(
            video,
            "↓ ${bitrate(stats.bitrateReceivedBps)}  ↑ ${bitrate(stats.bitrateSentBps)}",
            "RTT $rtt · $path",
        ).joinToString("\n")
    }

    fun bitrate(bps: Double): String = when {
        bps >= 1_000_000 -> String.format(Locale.ROOT, "%.1f Mbps", bps / 1_000_000)
        else -> "${Math.round(bps / 1000)} kbps"
    }

    private fun fps(fps: Double): String = Math.round(fps).toString()

    /** ICE's short names, the ones WebRTC tools show: host, srflx, prflx, relay. */
    fun candidate(type: CandidateType?): String = when (type) {
        null -> "?"
        CandidateType.HOST -> "host"
        CandidateType.SERVER_REFLEXIVE -> "srflx"
        CandidateType.PEER_REFLEXIVE -> "prflx"
        CandidateType.RELAY -> "relay"
    }
}
