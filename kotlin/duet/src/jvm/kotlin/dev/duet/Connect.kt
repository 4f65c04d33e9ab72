package dev.duet

/**
 * `VideoCall.connect` on the JVM (the tests, a desktop app): as on Android
 * (src/main/kotlin/dev/duet/android/Connect.kt, the same signature), except that with no
 * MediaCodec here a client given no [videoCodecs] uses OpenH264 ([softwareVideoCodecs]).
 */
suspend fun VideoCall.Companion.connect(
    config: ClientConfig,
    delegate: VideoCallDelegate,
    videoCodecs: VideoCodecs? = null,
): VideoCall = connectWithCodecs(config, delegate, videoCodecs)
