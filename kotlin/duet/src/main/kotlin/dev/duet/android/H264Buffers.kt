package dev.duet.android

import dev.duet.AccessUnitOutput
import dev.duet.VideoFrame
import dev.duet.append
import dev.duet.byteBuffer
import dev.duet.videoFrameI420
import java.nio.ByteBuffer

// Plain JVM code (no Android classes) for the MediaCodec codecs (MediaCodecVideoCodecs.kt):
// the parts with logic, run by the JVM tests (scripts/test-kotlin).

/**
 * MediaCodec's H.264 encoder hands out SPS and PPS once, in a buffer flagged
 * `BUFFER_FLAG_CODEC_CONFIG`, and keyframes without them; the engine sends every keyframe
 * with its parameter sets (a receiver that joins late or lost one needs them). This keeps
 * the last config and puts it before each keyframe.
 */
class H264ParameterSets {
    private var config: ByteBuffer = ByteBuffer.allocateDirect(0)

    /** Whether a codec config has been seen. */
    val known: Boolean get() = config.capacity() > 0

    /**
     * One output buffer of the encoder (Annex B, from its position to its limit). A config
     * buffer is kept and nothing is appended; a keyframe gets the config first.
     */
    fun onOutput(bytes: ByteBuffer, codecConfig: Boolean, keyframe: Boolean, output: AccessUnitOutput) {
        if (codecConfig) {
            config = ByteBuffer.allocateDirect(bytes.remaining()).put(bytes.duplicate())
            config.flip()
            return
        }
        if (keyframe && known) output.append(config.duplicate())
        output.append(bytes)
    }
}

/**
 * Copies a packed plane ([cols] x [rows] bytes from [src]'s position) into a strided one,
 * as a MediaCodec input `Image` lays its planes out (pixel stride 2 for semi-planar
 * encoders). [dst]'s position is where the plane starts.
 */
fun scatterPlane(src: ByteBuffer, cols: Int, rows: Int, dst: ByteBuffer, rowStride: Int, pixelStride: Int) {
    require(pixelStride >= 1 && rowStride >= (cols - 1) * pixelStride + 1) { "bad strides: row $rowStride, pixel $pixelStride" }
    val needed = rowStride * (rows - 1) + (cols - 1) * pixelStride + 1
    require(dst.remaining() >= needed) { "plane too short: ${dst.remaining()} bytes, need $needed" }
    require(src.remaining() >= cols * rows) { "source too short: ${src.remaining()} bytes, need ${cols * rows}" }
    val s = src.duplicate()
    val base = dst.position()
    if (pixelStride == 1) {
        val d = dst.duplicate()
        for (row in 0 until rows) {
            s.limit(s.position() + cols)
            d.position(base + row * rowStride)
            d.put(s)
            s.limit(s.capacity())
        }
        return
    }
    val from = s.position()
    for (row in 0 until rows) {
        var at = base + row * rowStride
        for (col in 0 until cols) {
            dst.put(at, s.get(from + row * cols + col))
            at += pixelStride
        }
    }
}

/**
 * Writes an I420 [frame] into the three planes of an encoder's input picture (each a
 * buffer positioned at its start, with its row and pixel strides; U and V share theirs).
 */
fun writeI420(
    frame: VideoFrame,
    y: ByteBuffer, yRowStride: Int,
    u: ByteBuffer, v: ByteBuffer, chromaRowStride: Int, chromaPixelStride: Int,
) {
    val all = frame.byteBuffer()
    fun plane(offset: ULong, len: Int) = all.duplicate().apply { position(offset.toInt()); limit(offset.toInt() + len) }.slice()
    val w = frame.width().toInt()
    val h = frame.height().toInt()
    val cw = frame.chromaWidth().toInt()
    val ch = frame.chromaHeight().toInt()
    scatterPlane(plane(frame.yOffset(), w * h), w, h, y, yRowStride, 1)
    scatterPlane(plane(frame.uOffset(), cw * ch), cw, ch, u, chromaRowStride, chromaPixelStride)
    scatterPlane(plane(frame.vOffset(), cw * ch), cw, ch, v, chromaRowStride, chromaPixelStride)
}

/**
 * Makes the engine's [VideoFrame] from a decoder's output picture in `Image` terms (three
 * direct planes with row and pixel strides): planar chroma is read in place, strided chroma
 * is gathered first. One instance per decoder: it keeps scratch buffers.
 */
class Yuv420Frames {
    private val chroma = ChromaGatherer()

    fun frame(
        width: Int, height: Int,
        y: ByteBuffer, yRowStride: Int,
        u: ByteBuffer, uRowStride: Int, uPixelStride: Int,
        v: ByteBuffer, vRowStride: Int, vPixelStride: Int,
        timestampUs: Long,
    ): VideoFrame {
        val cw = (width + 1) / 2
        val ch = (height + 1) / 2
        if (uPixelStride == 1 && vPixelStride == 1) {
            return videoFrameI420(width.toUInt(), height.toUInt(), y.slice(), yRowStride.toUInt(),
                u.slice(), uRowStride.toUInt(), v.slice(), vRowStride.toUInt(), timestampUs.toULong())
        }
        chroma.gather(u, uRowStride, uPixelStride, v, vRowStride, vPixelStride, cw, ch)
        return videoFrameI420(width.toUInt(), height.toUInt(), y.slice(), yRowStride.toUInt(),
            chroma.u, cw.toUInt(), chroma.v, cw.toUInt(), timestampUs.toULong())
    }
}
