package dev.duet

/**
 * `VideoCall.connect` on the JVM (the tests, a desktop app): as on Android
 * (src/main/kotlin/dev/duet/android/Connect.kt, the same signature), except that with no
 * MediaCodec here a client given no [videoCodecs] uses OpenH264 ([softwareVideoCodecs]), and the
 * host's library has TLS of its own, which a client given no [tlsConnector] uses for `wss://`
 * ([SocketTlsConnector] is the JVM's).
 */
suspend fun VideoCall.Companion.connect(
    config: ClientConfig,
    delegate: VideoCallDelegate,
    videoCodecs: VideoCodecs? = null,
    tlsConnector: TlsConnector? = null,
): VideoCall = connectWithCodecs(config, delegate, videoCodecs, tlsConnector)
