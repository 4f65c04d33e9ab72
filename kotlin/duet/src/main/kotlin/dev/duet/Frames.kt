package dev.duet

import com.sun.jna.Native
import com.sun.jna.Pointer
import java.nio.ByteBuffer

// Camera frames into a LocalStream, from direct ByteBuffers, at the cost of one UniFFI call
// with plain integer arguments (LocalStream.pushI420At / pushNv12At). The generated `&[u8]`
// and enum arguments this replaces cost a JNA Structure, or an allocation call, each: a fixed
// 20-50 µs per 720p push (docs/benchmarks.md, "Cost of a push across the FFI").

/**
 * Pushes an I420 camera frame. Each plane is a **direct** [ByteBuffer] whose bytes run from
 * its position to its limit (an `Image.Plane` buffer as the camera hands it over); it is
 * read during this call only and copied once into the engine's packed frame. Strides may
 * include row padding. Frames pushed while video is disabled are dropped.
 *
 * @throws IllegalArgumentException when a plane is not a direct buffer.
 * @throws CaptureException when the sizes, strides or plane lengths do not describe a picture.
 */
@Throws(CaptureException::class)
fun LocalStream.pushI420(
    width: UInt,
    height: UInt,
    y: ByteBuffer,
    yStride: UInt,
    u: ByteBuffer,
    uStride: UInt,
    v: ByteBuffer,
    vStride: UInt,
    timestampUs: ULong,
    rotation: Rotation,
) {
    pushI420At(
        width, height,
        planeAddress(y, "Y"), y.remaining().toULong(), yStride,
        planeAddress(u, "U"), u.remaining().toULong(), uStride,
        planeAddress(v, "V"), v.remaining().toULong(), vStride,
        timestampUs, rotation.degrees(),
    )
    keepAlive(y)
    keepAlive(u)
    keepAlive(v)
}

/**
 * Pushes an NV12 camera frame (Y plane, then interleaved U,V), the usual layout of Android
 * cameras. The planes are direct [ByteBuffer]s, as for [pushI420].
 *
 * @throws IllegalArgumentException when a plane is not a direct buffer.
 * @throws CaptureException when the sizes, strides or plane lengths do not describe a picture.
 */
@Throws(CaptureException::class)
fun LocalStream.pushNv12(
    width: UInt,
    height: UInt,
    y: ByteBuffer,
    yStride: UInt,
    uv: ByteBuffer,
    uvStride: UInt,
    timestampUs: ULong,
    rotation: Rotation,
) {
    pushNv12At(
        width, height,
        planeAddress(y, "Y"), y.remaining().toULong(), yStride,
        planeAddress(uv, "UV"), uv.remaining().toULong(), uvStride,
        timestampUs, rotation.degrees(),
    )
    keepAlive(y)
    keepAlive(uv)
}

/** Clockwise degrees, as `pushI420At` takes them. */
fun Rotation.degrees(): UInt = when (this) {
    Rotation.DEG0 -> 0u
    Rotation.DEG90 -> 90u
    Rotation.DEG180 -> 180u
    Rotation.DEG270 -> 270u
}

/** The native address of [buffer]'s position; 0 for an empty buffer (the engine reads none). */
private fun planeAddress(buffer: ByteBuffer, plane: String): ULong {
    require(buffer.isDirect) { "the $plane plane must be a direct ByteBuffer (ByteBuffer.allocateDirect)" }
    if (!buffer.hasRemaining()) return 0uL
    return (Pointer.nativeValue(Native.getDirectBufferPointer(buffer)) + buffer.position()).toULong()
}

/**
 * Keeps [buffer] reachable until here, so the memory it owns outlives the push that read its
 * address. `Reference.reachabilityFence` would say it directly, but Android has it only from
 * API 28; an (uncontended, empty) synchronized block is the older idiom the JLS guarantees.
 */
@Suppress("ControlFlowWithEmptyBody")
private fun keepAlive(buffer: ByteBuffer) {
    synchronized(buffer) {}
}

// Video codecs written in Kotlin (VideoCodecs, VideoEncoder, VideoDecoder) read and write
// bytes by address too: an AccessUnit and a VideoFrame are read in place, an encoder's
// output is appended from a direct ByteBuffer, a decoder's picture is copied once from
// direct ByteBuffer planes.

/**
 * The access unit's bytes, read in place: valid while this [AccessUnit] is alive (do not
 * close it before you are done, and copy what you keep past [VideoDecoder.decode]).
 */
fun AccessUnit.byteBuffer(): ByteBuffer = bytesAt(dataAddress(), dataLen())

/**
 * The frame's packed I420 bytes (Y, then U at [VideoFrame.uOffset], V at
 * [VideoFrame.vOffset]), read in place: valid while this [VideoFrame] is alive.
 */
fun VideoFrame.byteBuffer(): ByteBuffer = bytesAt(dataAddress(), dataLen())

private fun bytesAt(address: ULong, len: ULong): ByteBuffer =
    if (len == 0uL) ByteBuffer.allocateDirect(0)
    else Pointer(address.toLong()).getByteBuffer(0, len.toLong())

/**
 * Appends an encoder's output (Annex B, from [bytes]' position to its limit) to this
 * access unit; [bytes] must be a direct buffer, such as a MediaCodec output buffer. Copied
 * during the call.
 *
 * @throws IllegalArgumentException when [bytes] is not a direct buffer.
 */
@Throws(VideoCodecException::class)
fun AccessUnitOutput.append(bytes: ByteBuffer) {
    appendAt(planeAddress(bytes, "access unit"), bytes.remaining().toULong())
    keepAlive(bytes)
}

/**
 * A decoded picture from I420 planes in direct [ByteBuffer]s (each from its position to
 * its limit; strides may include row padding), copied once into the engine's frame: what
 * a [VideoDecoder] written in Kotlin returns.
 *
 * @throws IllegalArgumentException when a plane is not a direct buffer.
 * @throws VideoCodecException when the sizes, strides or plane lengths do not describe a picture.
 */
@Throws(VideoCodecException::class)
fun videoFrameI420(
    width: UInt,
    height: UInt,
    y: ByteBuffer,
    yStride: UInt,
    u: ByteBuffer,
    uStride: UInt,
    v: ByteBuffer,
    vStride: UInt,
    timestampUs: ULong,
): VideoFrame {
    val frame = VideoFrame.fromI420At(
        width, height,
        planeAddress(y, "Y"), y.remaining().toULong(), yStride,
        planeAddress(u, "U"), u.remaining().toULong(), uStride,
        planeAddress(v, "V"), v.remaining().toULong(), vStride,
        timestampUs,
    )
    keepAlive(y)
    keepAlive(u)
    keepAlive(v)
    return frame
}
