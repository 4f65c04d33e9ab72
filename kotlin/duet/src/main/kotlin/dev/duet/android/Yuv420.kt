package dev.duet.android

import com.sun.jna.Native
import com.sun.jna.Pointer
import dev.duet.LocalStream
import dev.duet.Rotation
import dev.duet.pushI420
import dev.duet.pushNv12
import java.nio.ByteBuffer

// Plain JVM code (no Android classes): the Android shims use it, and the JVM tests run it
// against the real engine (scripts/test-kotlin).

/** How the chroma of a YUV_420_888 picture lies in memory, as [Yuv420Pusher.push] found it. */
enum class ChromaLayout {
    /** Separate U and V planes (pixel stride 1): pushed as I420 straight from the planes. */
    I420,

    /**
     * One interleaved plane, U first (V's buffer starts one byte after U's): pushed as NV12
     * straight from the planes.
     */
    NV12,

    /**
     * Interleaved, V first (U's buffer starts one byte after V's), the order many Android
     * cameras use. The engine takes NV12 but not NV21, so the chroma (a third of the
     * picture) is split into two reused buffers, then the picture is pushed as I420.
     */
    NV21,

    /** Any other pixel stride or plane placement: gathered like [NV21], pushed as I420. */
    STRIDED,
}

/**
 * Pushes YUV 4:2:0 pictures described the way `android.media.Image` describes them (three
 * planes, each a direct [ByteBuffer] with a row stride and a pixel stride) into a
 * [LocalStream], choosing `pushNv12` or `pushI420` so that the luma, and the chroma of NV12
 * and I420 layouts, cross into the engine without a copy here (the engine copies once into
 * its own packed frame).
 *
 * One instance per capture thread: it keeps scratch buffers between frames.
 */
class Yuv420Pusher {
    private val chroma = ChromaGatherer()

    /**
     * Pushes one picture. [y], [u] and [v] must be direct buffers whose position is where
     * the plane starts (an `Image.Plane` buffer as the camera hands it over). U and V must
     * share their row and pixel strides (YUV_420_888 guarantees it).
     *
     * @return the chroma layout found, for logs and tests.
     * @throws dev.duet.CaptureException when the engine refuses the picture (planes too short).
     */
    fun push(
        stream: LocalStream,
        width: Int,
        height: Int,
        y: ByteBuffer,
        yRowStride: Int,
        u: ByteBuffer,
        uRowStride: Int,
        uPixelStride: Int,
        v: ByteBuffer,
        vRowStride: Int,
        vPixelStride: Int,
        timestampUs: Long,
        rotation: Rotation,
    ): ChromaLayout {
        require(y.isDirect && u.isDirect && v.isDirect) { "camera planes must be direct ByteBuffers" }
        val w = width.toUInt()
        val h = height.toUInt()
        val ts = timestampUs.toULong()
        val chromaWidth = (width + 1) / 2
        val chromaHeight = (height + 1) / 2
        // pushI420/pushNv12 read a buffer from its position to its limit; slice() is kept
        // so the plane handed over is exactly that, whoever reads it.
        val yPlane = y.slice()

        if (uPixelStride == 1 && vPixelStride == 1) {
            stream.pushI420(w, h, yPlane, yRowStride.toUInt(), u.slice(), uRowStride.toUInt(),
                v.slice(), vRowStride.toUInt(), ts, rotation)
            return ChromaLayout.I420
        }

        val uAddress = address(u)
        val vAddress = address(v)
        if (uPixelStride == 2 && vPixelStride == 2 && uRowStride == vRowStride) {
            if (vAddress == uAddress + 1) {
                // U V U V ...: the U buffer is an NV12 plane, but it stops at the last U,
                // one byte before the last V, and the engine wants the whole last pair. The
                // union of the two buffers is the plane: view it as one buffer.
                val end = maxOf(uAddress + u.remaining(), vAddress + v.remaining())
                val uv = Pointer(uAddress).getByteBuffer(0, end - uAddress)
                stream.pushNv12(w, h, yPlane, yRowStride.toUInt(), uv, uRowStride.toUInt(), ts, rotation)
                return ChromaLayout.NV12
            }
        }

        val layout = if (uPixelStride == 2 && vPixelStride == 2 && uRowStride == vRowStride &&
            uAddress == vAddress + 1) ChromaLayout.NV21 else ChromaLayout.STRIDED
        chroma.gather(u, uRowStride, uPixelStride, v, vRowStride, vPixelStride, chromaWidth, chromaHeight)
        stream.pushI420(w, h, yPlane, yRowStride.toUInt(), chroma.u, chromaWidth.toUInt(),
            chroma.v, chromaWidth.toUInt(), ts, rotation)
        return layout
    }

    companion object {
        /** The native address of [buffer]'s current position. */
        fun address(buffer: ByteBuffer): Long =
            Pointer.nativeValue(Native.getDirectBufferPointer(buffer)) + buffer.position()

        /** A clockwise rotation in degrees (any multiple of 90) as the engine's [Rotation]. */
        fun rotation(degrees: Int): Rotation = when (((degrees % 360) + 360) % 360) {
            90 -> Rotation.DEG90
            180 -> Rotation.DEG180
            270 -> Rotation.DEG270
            else -> Rotation.DEG0
        }
    }
}

/**
 * Packs strided chroma planes (pixel stride 2, or any other layout an `Image` may have) into
 * two reused direct buffers, [u] and [v], as I420 wants them. One instance per thread.
 */
class ChromaGatherer {
    /** The packed U plane after [gather]: `cols * rows` bytes from position 0. */
    var u: ByteBuffer = ByteBuffer.allocateDirect(0)
        private set
    /** The packed V plane after [gather]. */
    var v: ByteBuffer = ByteBuffer.allocateDirect(0)
        private set
    private var rowBytes = ByteArray(0)
    private var planeBytes = ByteArray(0)

    /** Packs both planes ([cols] x [rows] samples each) into [u] and [v]. */
    fun gather(
        u: ByteBuffer, uRowStride: Int, uPixelStride: Int,
        v: ByteBuffer, vRowStride: Int, vPixelStride: Int,
        cols: Int, rows: Int,
    ) {
        if (this.u.capacity() != cols * rows) {
            this.u = ByteBuffer.allocateDirect(cols * rows)
            this.v = ByteBuffer.allocateDirect(cols * rows)
        }
        gather(u, uRowStride, uPixelStride, cols, rows, this.u)
        gather(v, vRowStride, vPixelStride, cols, rows, this.v)
    }

    /** Copies every [pixelStride]-th byte of each row of [src] into [dst], packed. */
    private fun gather(src: ByteBuffer, rowStride: Int, pixelStride: Int, cols: Int, rows: Int, dst: ByteBuffer) {
        val rowLength = (cols - 1) * pixelStride + 1
        require(rowStride >= rowLength && pixelStride >= 1) { "bad chroma strides: row $rowStride, pixel $pixelStride" }
        val needed = rowStride * (rows - 1) + rowLength
        require(src.remaining() >= needed) { "chroma plane too short: ${src.remaining()} bytes, need $needed" }
        if (rowBytes.size < rowLength) rowBytes = ByteArray(rowLength)
        if (planeBytes.size < cols * rows) planeBytes = ByteArray(cols * rows)
        val plane = src.duplicate()
        val base = plane.position()
        var out = 0
        for (row in 0 until rows) {
            plane.position(base + row * rowStride)
            plane.get(rowBytes, 0, rowLength)
            var i = 0
            for (col in 0 until cols) {
                planeBytes[out++] = rowBytes[i]
                i += pixelStride
            }
        }
        dst.clear()
        dst.put(planeBytes, 0, cols * rows)
        dst.clear()
    }
}

/**
 * Colour conversion for the sample renderer: packed I420 (as `VideoFrame` holds it) to
 * ARGB_8888 pixels, BT.601 video range (what H.264 decoders put out unless told otherwise).
 * Integer arithmetic, one pass; a GL renderer would do this in a shader instead.
 */
object I420ToArgb {
    /**
     * Converts the [width] x [height] picture in [src] (Y plane, then U, then V, each packed,
     * chroma planes `(width + 1) / 2` x `(height + 1) / 2`) into [out] (row-major, at least
     * `width * height` pixels).
     */
    fun convert(src: ByteArray, width: Int, height: Int, out: IntArray) =
        convert(ByteBuffer.wrap(src), width, height, out)

    /**
     * As the [ByteArray] form, from [src]'s bytes 0 until its limit (absolute reads; its
     * position is untouched): a direct buffer over a `VideoFrame`'s `dataAddress()` converts
     * straight from the engine's memory, with no copy before.
     */
    fun convert(src: ByteBuffer, width: Int, height: Int, out: IntArray) {
        val chromaWidth = (width + 1) / 2
        val chromaHeight = (height + 1) / 2
        val uOffset = width * height
        val vOffset = uOffset + chromaWidth * chromaHeight
        require(src.limit() >= vOffset + chromaWidth * chromaHeight) { "I420 data too short for ${width}x$height" }
        require(out.size >= width * height) { "output too small for ${width}x$height" }
        for (row in 0 until height) {
            val yRow = row * width
            val cRow = (row shr 1) * chromaWidth
            for (col in 0 until width) {
                val c = (src.get(yRow + col).toInt() and 0xff) - 16
                val d = (src.get(uOffset + cRow + (col shr 1)).toInt() and 0xff) - 128
                val e = (src.get(vOffset + cRow + (col shr 1)).toInt() and 0xff) - 128
                val y = 298 * c + 128
                val r = clamp((y + 409 * e) shr 8)
                val g = clamp((y - 100 * d - 208 * e) shr 8)
                val b = clamp((y + 516 * d) shr 8)
                out[yRow + col] = (0xff shl 24) or (r shl 16) or (g shl 8) or b
            }
        }
    }

    private fun clamp(x: Int): Int = if (x < 0) 0 else if (x > 255) 255 else x
}
