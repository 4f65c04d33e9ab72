package dev.duet.example.call

import dev.duet.LocalStream
import dev.duet.RemoteStream

/**
 * This device's camera, microphone and speaker, as [CallSession] needs them. On Android it
 * is `DeviceMedia` (Duet's CameraCapturer and AudioDevice); tests use a stream with no
 * capture behind it.
 */
interface LocalMedia {
    /** Hears capture and playback problems, on any thread. Set by [CallSession]. */
    var onProblem: ((String) -> Unit)?

    /**
     * A stream for the next call, capturing what the user allowed (camera, microphone,
     * both or neither). Called when a call is placed or accepted.
     */
    fun start(): LocalStream

    /** Plays the other side's audio. */
    fun play(remote: RemoteStream)

    /** Stops capture and playback and releases the stream [start] made. */
    fun stop()
}
