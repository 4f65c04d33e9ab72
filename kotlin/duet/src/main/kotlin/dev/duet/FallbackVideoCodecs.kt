package dev.duet

/**
 * Video codecs that try [primary] (a platform's hardware codecs) and use [fallback] (by
 * default OpenH264, [softwareVideoCodecs]) for any encoder or decoder [primary] cannot
 * make: a device whose MediaCodec refuses a size or has no H.264 encoder still calls.
 * Plain Kotlin, so it runs in the JVM tests. [onFallback] hears why. The AAR's library has
 * no OpenH264 inside: the fallback uses the one [useOpenh264Library] loaded (Cisco's binary,
 * downloaded at run time: README, "Video codecs"), else a `libopenh264.so` the loader finds.
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
