package dev.duet.example.call

import dev.duet.LocalStream
import dev.duet.RemoteStream
import dev.duet.StreamConstraints
import dev.duet.VideoConstraints

/** Media for JVM tests: the engine's synthetic camera and microphone instead of devices. */
class TestMedia(private val video: Boolean = true, private val audio: Boolean = true) : LocalMedia {
    override var onProblem: ((String) -> Unit)? = null
    @Volatile var stream: LocalStream? = null
    @Volatile var playing: RemoteStream? = null

    override fun start(): LocalStream = LocalStream.synthetic(
        StreamConstraints(audio = audio, video = if (video) VideoConstraints(320u, 240u, 15u, 300_000u) else null),
    ).also { stream = it }

    override fun play(remote: RemoteStream) {
        playing = remote
    }

    override fun stop() {
        stream?.close()
        stream = null
        playing = null
    }
}
