// In package dev.duet beside the generated API, so that `import dev.duet.*` brings it.
package dev.duet

import dev.duet.android.MediaCodecVideoCodecs

/**
 * Connects and authenticates. Returns once the server has welcomed this device, so a wrong URL
 * or a refused token throws [ConnectException] here; after that, a dropped connection is
 * retried in the background and calls resume. [delegate] hears incoming calls.
 *
 * [videoCodecs] makes every call's video encoder and decoder; left out, the device's hardware
 * H.264 ([MediaCodecVideoCodecs.withFallback]: OpenH264 for what fails to start).
 * [tlsConnector] makes the TLS connections of a `wss://` server; left out, the platform's
 * ([SocketTlsConnector]: Android's TLS and trust store; the library has no TLS of its own).
 *
 * The engine's own constructor is the generated [VideoCall.Companion.connectWithCodecs]; the
 * JVM build (tests, desktop) has its own `connect` with OpenH264 and the library's TLS as the
 * defaults (kotlin/duet/src/jvm), as it has no MediaCodec.
 */
suspend fun VideoCall.Companion.connect(
    config: ClientConfig,
    delegate: VideoCallDelegate,
    videoCodecs: VideoCodecs? = null,
    tlsConnector: TlsConnector? = null,
): VideoCall = connectWithCodecs(
    config,
    delegate,
    videoCodecs ?: MediaCodecVideoCodecs.withFallback(),
    tlsConnector ?: SocketTlsConnector(),
)
