package dev.duet

/**
 * Video codecs that try [primary] (a platform's hardware codecs) and use [fallback] (by
 * default OpenH264, [softwareVideoCodecs]) for any encoder or decoder [primary] cannot
 * make: a device whose MediaCodec refuses a size or has no H.264 encoder still calls.
 * Plain Kotlin, so it runs in the JVM tests. [onFallback] hears why. The AAR's library has
 * no OpenH264 inside: the fallback finds Cisco's `libopenh264.so` among the app's native
 * libraries, or the one [useOpenh264Library] loaded.
 */
class FallbackVideoCodecs(
    private val primary: VideoCodecs,
    private val fallback: VideoCodecs = softwareVideoCodecs(),
    private val onFallback: (what: String, error: Exception) -> Unit = { _, _ -> },
) : VideoCodecs {
    override fun encoder(config: VideoEncoderConfig): VideoEncoder = try {
        primary.encoder(config)
    } catch (e: Exception) {
        onFallback("encoder", e)
        fallback.encoder(config)
    }

    override fun decoder(): VideoDecoder = try {
        primary.decoder()
    } catch (e: Exception) {
        onFallback("decoder", e)
        fallback.decoder()
    }
}
