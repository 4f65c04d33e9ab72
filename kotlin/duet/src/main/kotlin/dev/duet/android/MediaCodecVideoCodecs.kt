package dev.duet.android

import android.media.MediaCodec
import android.media.MediaCodecInfo
import android.media.MediaFormat
import android.os.Bundle
import android.util.Log
import dev.duet.AccessUnit
import dev.duet.AccessUnitOutput
import dev.duet.FallbackVideoCodecs
import dev.duet.VideoCodecException
import dev.duet.VideoCodecs
import dev.duet.VideoDecoder
import dev.duet.VideoEncoder
import dev.duet.VideoEncoderConfig
import dev.duet.VideoFrame
import dev.duet.byteBuffer
import dev.duet.softwareVideoCodecs
import java.nio.ByteBuffer

/**
 * The device's H.264 hardware codecs (MediaCodec), with OpenH264 for any encoder or
 * decoder the device cannot start. Give it to `VideoCall.connect`:
 *
 * ```kotlin
 * val video = VideoCall.connect(config, delegate, MediaCodecVideoCodecs.withFallback())
 * ```
 *
 * Synchronous MediaCodec, as the engine calls: each `encode`/`decode` queues its input and
 * takes the output that is ready (a codec's one-frame latency shows as one skipped frame
 * at the start). The buffer logic is in H264Buffers.kt, tested on the JVM.
 */
class MediaCodecVideoCodecs : VideoCodecs {
    override fun encoder(config: VideoEncoderConfig): VideoEncoder = MediaCodecEncoder(config)

    override fun decoder(): VideoDecoder = MediaCodecDecoder()

    companion object {
        private const val TAG = "DuetMediaCodec"

        /** MediaCodec first, OpenH264 where it fails to start. */
        fun withFallback(): VideoCodecs = FallbackVideoCodecs(MediaCodecVideoCodecs(), softwareVideoCodecs()) { what, e ->
            Log.w(TAG, "MediaCodec H.264 $what unavailable, using OpenH264: $e")
        }
    }
}

private const val AVC = MediaFormat.MIMETYPE_VIDEO_AVC
/** How long a call waits for MediaCodec's buffers: short, a frame is due every 33 ms. */
private const val TIMEOUT_US = 10_000L

/** Runs [block], turning MediaCodec's exceptions into the engine's typed error. */
private inline fun <T> codec(what: String, block: () -> T): T = try {
    block()
} catch (e: VideoCodecException) {
    throw e
} catch (e: Exception) {
    throw VideoCodecException.Failed("MediaCodec $what: $e")
}

class MediaCodecEncoder(private val config: VideoEncoderConfig) : VideoEncoder {
    private var width = config.width.toInt()
    private var height = config.height.toInt()
    private var bitrate = config.maxBitrateBps.toInt()
    private var encoder: MediaCodec = start(width, height)
    private val parameterSets = H264ParameterSets()
    private val info = MediaCodec.BufferInfo()

    private fun start(w: Int, h: Int): MediaCodec = try {
        val format = MediaFormat.createVideoFormat(AVC, w, h).apply {
            setInteger(MediaFormat.KEY_COLOR_FORMAT, MediaCodecInfo.CodecCapabilities.COLOR_FormatYUV420Flexible)
            setInteger(MediaFormat.KEY_BIT_RATE, bitrate)
            setInteger(MediaFormat.KEY_BITRATE_MODE, MediaCodecInfo.EncoderCapabilities.BITRATE_MODE_CBR)
            setFloat(MediaFormat.KEY_FRAME_RATE, config.fps)
            // Keyframes when the receiver asks (PLI), not on a timer.
            setInteger(MediaFormat.KEY_I_FRAME_INTERVAL, 3600)
            setInteger(MediaFormat.KEY_PROFILE, MediaCodecInfo.CodecProfileLevel.AVCProfileConstrainedBaseline)
            setInteger(MediaFormat.KEY_LEVEL, MediaCodecInfo.CodecProfileLevel.AVCLevel31)
        }
        MediaCodec.createEncoderByType(AVC).apply {
            configure(format, null, null, MediaCodec.CONFIGURE_FLAG_ENCODE)
            start()
        }
    } catch (e: Exception) {
        throw VideoCodecException.Unavailable("MediaCodec H.264 encoder for ${w}x$h: $e")
    }

    override fun encode(frame: VideoFrame, keyframe: Boolean, output: AccessUnitOutput) = codec("encode") {
        if (frame.width().toInt() != width || frame.height().toInt() != height) {
            encoder.release()
            width = frame.width().toInt()
            height = frame.height().toInt()
            encoder = start(width, height)
        }
        if (keyframe) {
            encoder.setParameters(Bundle().apply { putInt(MediaCodec.PARAMETER_KEY_REQUEST_SYNC_FRAME, 0) })
        }
        val index = encoder.dequeueInputBuffer(TIMEOUT_US)
        if (index >= 0) {
            val image = encoder.getInputImage(index) ?: throw VideoCodecException.Failed("no input image")
            val p = image.planes
            writeI420(frame, p[0].buffer, p[0].rowStride, p[1].buffer, p[2].buffer, p[1].rowStride, p[1].pixelStride)
            encoder.queueInputBuffer(index, 0, width * height * 3 / 2, frame.timestampUs().toLong(), 0)
        }
        drainOne(output)
    }

    /** Appends the next access unit that is ready, after any codec config before it. */
    private fun drainOne(output: AccessUnitOutput) {
        while (true) {
            val index = encoder.dequeueOutputBuffer(info, TIMEOUT_US)
            if (index < 0) return
            val buffer = encoder.getOutputBuffer(index)
            if (buffer != null && info.size > 0) {
                buffer.position(info.offset).limit(info.offset + info.size)
                val config = info.flags and MediaCodec.BUFFER_FLAG_CODEC_CONFIG != 0
                val key = info.flags and MediaCodec.BUFFER_FLAG_KEY_FRAME != 0
                parameterSets.onOutput(buffer, config, key, output)
                encoder.releaseOutputBuffer(index, false)
                if (!config) return
            } else {
                encoder.releaseOutputBuffer(index, false)
            }
        }
    }

    override fun setTargetBitrate(bps: UInt) = codec("bitrate") {
        bitrate = bps.toInt()
        encoder.setParameters(Bundle().apply { putInt(MediaCodec.PARAMETER_KEY_VIDEO_BITRATE, bitrate) })
    }

    protected fun finalize() {
        encoder.release()
    }
}

class MediaCodecDecoder : VideoDecoder {
    private val decoder: MediaCodec = try {
        // The size is a hint: the stream's SPS gives the real one.
        MediaCodec.createDecoderByType(AVC).apply {
            val format = MediaFormat.createVideoFormat(AVC, 640, 480).apply {
                setInteger(MediaFormat.KEY_COLOR_FORMAT, MediaCodecInfo.CodecCapabilities.COLOR_FormatYUV420Flexible)
            }
            configure(format, null, null, 0)
            start()
        }
    } catch (e: Exception) {
        throw VideoCodecException.Unavailable("MediaCodec H.264 decoder: $e")
    }
    private val frames = Yuv420Frames()
    private val info = MediaCodec.BufferInfo()

    override fun decode(accessUnit: AccessUnit): VideoFrame? = codec("decode") {
        // A unit not queued is a hole in the stream that later frames would decode against:
        // failing says so, and the engine asks the sender for a keyframe.
        val index = decoder.dequeueInputBuffer(TIMEOUT_US)
        if (index < 0) throw VideoCodecException.Failed("MediaCodec had no free input buffer")
        val input: ByteBuffer = decoder.getInputBuffer(index) ?: throw VideoCodecException.Failed("no input buffer")
        val unit = accessUnit.byteBuffer()
        input.clear()
        input.put(unit)
        decoder.queueInputBuffer(index, 0, unit.limit(), accessUnit.timestampUs().toLong(), 0)
        // With getOutputImage (API 21+) the one status besides "try later" is a format change.
        var out = decoder.dequeueOutputBuffer(info, TIMEOUT_US)
        while (out == MediaCodec.INFO_OUTPUT_FORMAT_CHANGED) {
            out = decoder.dequeueOutputBuffer(info, TIMEOUT_US)
        }
        if (out < 0) return@codec null
        try {
            decoder.getOutputImage(out)?.use { image ->
                val p = image.planes
                val crop = image.cropRect
                frames.frame(
                    crop.width(), crop.height(),
                    p[0].buffer, p[0].rowStride,
                    p[1].buffer, p[1].rowStride, p[1].pixelStride,
                    p[2].buffer, p[2].rowStride, p[2].pixelStride,
                    info.presentationTimeUs,
                )
            }
        } finally {
            decoder.releaseOutputBuffer(out, false)
        }
    }

    protected fun finalize() {
        decoder.release()
    }
}
