package dev.duet

import com.sun.jna.Native
import com.sun.jna.Pointer
import java.nio.ByteBuffer
import java.util.WeakHashMap

// Camera frames into a LocalStream, from direct ByteBuffers, through duet-ffi's plain C entry
// points for pushes (rust/ffi/src/frame_push_c.rs), bound below with a JNA direct mapping:
// integer arguments and an integer status, no JNA Structure. They run the same
// LocalStream.push_i420_at / push_nv12_at as the generated pushI420At / pushNv12At, without
// UniFFI's per-call work in Kotlin (a handle clone as a second FFI call, and a JNA Structure
// for each call's status): 7-8 µs at best per push with it (docs/benchmarks.md, "Cost of a
// push across the FFI").

/**
 * Pushes an I420 camera frame. Each plane is a **direct** [ByteBuffer] whose bytes run from
 * its position to its limit (an `Image.Plane` buffer as the camera hands it over); it is
 * read during this call only and copied once into the engine's packed frame. Strides may
 * include row padding. Frames pushed while video is disabled are dropped.
 *
 * @throws IllegalArgumentException when a plane is not a direct buffer.
 * @throws IllegalStateException when the stream is closed.
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
    val yAt = planeAddress(y, "Y").toLong()
    val uAt = planeAddress(u, "U").toLong()
    val vAt = planeAddress(v, "V").toLong()
    val handle = pushHandle()
    val status = PushLib.duet_local_stream_push_i420(
        handle.raw, width.toInt(), height.toInt(),
        yAt, y.remaining().toLong(), yStride.toInt(),
        uAt, u.remaining().toLong(), uStride.toInt(),
        vAt, v.remaining().toLong(), vStride.toInt(),
        timestampUs.toLong(), rotation.degrees().toInt(),
    )
    keepAlive(handle)
    keepAlive(y)
    keepAlive(u)
    keepAlive(v)
    checkPush(status)
}

/**
 * Pushes an NV12 camera frame (Y plane, then interleaved U,V), the usual layout of Android
 * cameras. The planes are direct [ByteBuffer]s, as for [pushI420].
 *
 * @throws IllegalArgumentException when a plane is not a direct buffer.
 * @throws IllegalStateException when the stream is closed.
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
    val yAt = planeAddress(y, "Y").toLong()
    val uvAt = planeAddress(uv, "UV").toLong()
    val handle = pushHandle()
    val status = PushLib.duet_local_stream_push_nv12(
        handle.raw, width.toInt(), height.toInt(),
        yAt, y.remaining().toLong(), yStride.toInt(),
        uvAt, uv.remaining().toLong(), uvStride.toInt(),
        timestampUs.toLong(), rotation.degrees().toInt(),
    )
    keepAlive(handle)
    keepAlive(y)
    keepAlive(uv)
    checkPush(status)
}

/** The push entry points, bound by name; the library is the one the generated bindings load. */
private object PushLib {
    init {
        Native.register(PushLib::class.java, System.getProperty("uniffi.component.duet.libraryOverride") ?: "duet_ffi")
    }

    external fun duet_local_stream_push_handle(stream: Long): Long
    external fun duet_local_stream_push_handle_free(pushHandle: Long)
    external fun duet_local_stream_push_i420(
        pushHandle: Long, width: Int, height: Int,
        yAddress: Long, yLen: Long, yStride: Int,
        uAddress: Long, uLen: Long, uStride: Int,
        vAddress: Long, vLen: Long, vStride: Int,
        timestampUs: Long, rotationDegrees: Int,
    ): Int
    external fun duet_local_stream_push_nv12(
        pushHandle: Long, width: Int, height: Int,
        yAddress: Long, yLen: Long, yStride: Int,
        uvAddress: Long, uvLen: Long, uvStride: Int,
        timestampUs: Long, rotationDegrees: Int,
    ): Int
    external fun duet_push_error_take(): RustBuffer.ByValue
}

// A push's status, as frame_push_c.rs numbers them.
private const val PUSH_OK = 0
private const val PUSH_CAPTURE_ERROR = 1
private const val PUSH_PANIC = 2
private const val PUSH_CLOSED = 3

/**
 * A stream's push handle (frame_push_c.rs): a weak reference to the Rust stream, so a push
 * cannot outlive it and it does not outlive `close()`. Freed when this holder is collected,
 * which its map entry prevents while the stream is reachable; a push keeps it reachable to
 * the end of the call.
 */
private class PushHandle(val raw: Long)

/** The action must not hold the [PushHandle] it frees, or the holder would never be collected. */
private class FreePushHandle(private val raw: Long) : Runnable {
    override fun run() = PushLib.duet_local_stream_push_handle_free(raw)
}

private val pushHandles = WeakHashMap<LocalStream, PushHandle>()

/** This stream's push handle, made at its first push. */
private fun LocalStream.pushHandle(): PushHandle {
    if (uniffiIsDestroyed) throw destroyed()
    return synchronized(pushHandles) {
        pushHandles.getOrPut(this) {
            val raw = callWithHandle { PushLib.duet_local_stream_push_handle(it) }
            PushHandle(raw).also { UniffiLib.CLEANER.register(it, FreePushHandle(raw)) }
        }
    }
}

/** What the generated methods (`callWithHandle`) throw on a closed object. */
private fun LocalStream.destroyed() = IllegalStateException("${javaClass.simpleName} object has already been destroyed")

/** Throws for a failed push what the generated pushI420At / pushNv12At throw. */
private fun LocalStream.checkPush(status: Int) {
    when (status) {
        PUSH_OK -> return
        PUSH_CAPTURE_ERROR -> throw CaptureException.lift(PushLib.duet_push_error_take())
        PUSH_PANIC -> {
            val message = FfiConverterString.lift(PushLib.duet_push_error_take())
            throw InternalException(message.ifEmpty { "Rust panic" })
        }
        PUSH_CLOSED -> throw destroyed()
        else -> throw InternalException("unknown push status $status")
    }
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
 * Keeps [value] reachable until here, so the memory it owns (a buffer's bytes, a push handle)
 * outlives the native call that used its address. `Reference.reachabilityFence` would say it
 * directly, but Android has it only from API 28; an (uncontended, empty) synchronized block is
 * the older idiom the JLS guarantees.
 */
@Suppress("ControlFlowWithEmptyBody")
private fun keepAlive(value: Any) {
    synchronized(value) {}
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
