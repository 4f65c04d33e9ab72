package dev.duet

import com.sun.jna.Native
import com.sun.jna.Pointer
import dev.duet.android.ChromaLayout
import dev.duet.android.I420ToArgb
import dev.duet.android.Yuv420Pusher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Rule
import org.junit.Test
import java.nio.ByteBuffer
import java.util.concurrent.atomic.AtomicReference
import kotlin.math.abs

/**
 * Frames pushed from Kotlin (through the camera shim's [Yuv420Pusher], with every plane
 * layout an Android camera hands over) cross a real call with their colours intact; bad
 * input is refused with Kotlin exceptions; the renderer's colour conversion is right.
 */
class MediaTest {
    @get:Rule
    val timing = Timing()

    private val width = 320
    private val height = 240
    private val cw = width / 2
    private val ch = height / 2

    /** A uniform picture in the planes an `android.media.Image` would hold, laid out as [layout]. */
    private inner class CameraPicture(val layout: ChromaLayout, val yv: Int, val uv: Int, val vv: Int) {
        val yRowStride = width + 32
        val y: ByteBuffer
        val u: ByteBuffer
        val v: ByteBuffer
        val cRowStride: Int
        val pixelStride: Int

        init {
            // The Y plane starts 7 bytes into its buffer: the pusher must honour position().
            val yAll = ByteBuffer.allocateDirect(7 + yRowStride * (height - 1) + width)
            for (i in 0 until yAll.capacity()) yAll.put(i, 0x55)
            for (row in 0 until height) for (col in 0 until width) yAll.put(7 + row * yRowStride + col, yv.toByte())
            yAll.position(7)
            y = yAll
            when (layout) {
                ChromaLayout.I420 -> {
                    pixelStride = 1
                    cRowStride = cw + 16
                    u = plane(uv, cRowStride, 1, 0)
                    v = plane(vv, cRowStride, 1, 0)
                }
                ChromaLayout.NV12, ChromaLayout.NV21 -> {
                    // One buffer of pairs; each plane's buffer stops at its own last sample,
                    // as Android's do.
                    pixelStride = 2
                    cRowStride = width + 64
                    val first = if (layout == ChromaLayout.NV12) uv else vv
                    val second = if (layout == ChromaLayout.NV12) vv else uv
                    val all = ByteBuffer.allocateDirect(cRowStride * (ch - 1) + 2 * cw)
                    for (row in 0 until ch) for (col in 0 until cw) {
                        all.put(row * cRowStride + 2 * col, first.toByte())
                        all.put(row * cRowStride + 2 * col + 1, second.toByte())
                    }
                    val length = cRowStride * (ch - 1) + 2 * cw - 1
                    val a = all.duplicate().apply { position(0); limit(length) }.slice()
                    val b = all.duplicate().apply { position(1); limit(1 + length) }.slice()
                    u = if (layout == ChromaLayout.NV12) a else b
                    v = if (layout == ChromaLayout.NV12) b else a
                }
                ChromaLayout.STRIDED -> {
                    // Pixel stride 2, but U and V in separate buffers (not one interleaved plane).
                    pixelStride = 2
                    cRowStride = width + 8
                    u = plane(uv, cRowStride, 2, 0x10)
                    v = plane(vv, cRowStride, 2, 0x20)
                }
            }
        }

        private fun plane(value: Int, rowStride: Int, pixelStride: Int, filler: Int): ByteBuffer {
            val b = ByteBuffer.allocateDirect(rowStride * (ch - 1) + (cw - 1) * pixelStride + 1)
            for (i in 0 until b.capacity()) b.put(i, filler.toByte())
            for (row in 0 until ch) for (col in 0 until cw) b.put(row * rowStride + col * pixelStride, value.toByte())
            return b
        }

        fun push(pusher: Yuv420Pusher, stream: LocalStream, timestampUs: Long): ChromaLayout = pusher.push(
            stream, width, height, y, yRowStride, u, cRowStride, pixelStride, v, cRowStride, pixelStride,
            timestampUs, Rotation.DEG0,
        )
    }

    /** Averages each plane of the newest decoded frame. */
    private class AveragingSink : VideoSink {
        @Volatile var latest: Triple<Double, Double, Double>? = null
        override fun onVideoFrame(frame: VideoFrame) = frame.use {
            val bytes = Pointer(it.dataAddress().toLong()).getByteArray(0, it.dataLen().toInt())
            fun avg(from: Int, to: Int): Double {
                var sum = 0L
                for (i in from until to) sum += bytes[i].toInt() and 0xff
                return sum.toDouble() / (to - from)
            }
            val u = it.uOffset().toInt()
            val v = it.vOffset().toInt()
            latest = Triple(avg(0, u), avg(u, v), avg(v, bytes.size))
        }
    }

    @Test
    fun pushedCameraLayoutsKeepTheirColours() = runBlocking {
        // Distinct colours per layout, none another's with U and V swapped.
        val pictures = listOf(
            CameraPicture(ChromaLayout.NV12, 100, 60, 200),
            CameraPicture(ChromaLayout.NV21, 150, 190, 80),
            CameraPicture(ChromaLayout.I420, 80, 120, 40),
            CameraPicture(ChromaLayout.STRIDED, 180, 40, 110),
        )
        DuetServer.start().use { server ->
            Client.connect(server, "alice").use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val camera = LocalStream(StreamConstraints(audio = false, video = VideoConstraints(width.toUInt(), height.toUInt(), 30u, 600_000u)))
                    // Like a camera, the feeder pushes from the start: the remote stream's
                    // track appears with the first frames.
                    val current = AtomicReference(pictures[0])
                    val layoutsSeen = java.util.concurrent.ConcurrentHashMap.newKeySet<ChromaLayout>()
                    val pusher = Yuv420Pusher()
                    val feeder = launch(Dispatchers.Default) {
                        val start = System.nanoTime()
                        while (isActive) {
                            val picture = current.get()
                            val layout = picture.push(pusher, camera, (System.nanoTime() - start) / 1000)
                            check(layout == picture.layout) { "${picture.layout} picture pushed as $layout" }
                            layoutsSeen.add(layout)
                            delay(33)
                        }
                    }
                    val outgoing = alice.videoCall.call("bob", camera, callOptions())
                    val aliceEvents = RecordingConversationDelegate()
                    outgoing.setDelegate(aliceEvents)
                    val incoming = bob.delegate.next()
                    val bobEvents = RecordingConversationDelegate()
                    incoming.conversation.setDelegate(bobEvents)
                    incoming.conversation.accept(syntheticStream())
                    val sink = AveragingSink()
                    try {
                        val remote = (bobEvents.next() as Event.Stream).stream
                        remote.setVideoSink(sink)
                        for (picture in pictures) {
                            current.set(picture)
                            eventually("${picture.layout} colours (${picture.yv}, ${picture.uv}, ${picture.vv})", 8_000, { sink.latest }) {
                                val (y, u, v) = sink.latest ?: return@eventually false
                                abs(y - picture.yv) < 6 && abs(u - picture.uv) < 6 && abs(v - picture.vv) < 6
                            }
                        }
                    } finally {
                        feeder.cancelAndJoin()
                    }
                    // Each picture was classified as the layout it was built in.
                    for (picture in pictures) {
                        assertEquals(picture.layout, picture.push(Yuv420Pusher(), camera, 0))
                    }
                    assertEquals(pictures.map { it.layout }.toSet(), layoutsSeen)
                    outgoing.hangUp()
                    assertEquals(Event.Closed, bobEvents.next())
                }
            }
        }
    }

    @Test
    fun badInputIsRefusedWithKotlinExceptions() {
        val stream = LocalStream(StreamConstraints(audio = true, video = VideoConstraints(320u, 240u, 30u, 600_000u)))
        stream.use {
            val y = ByteBuffer.allocateDirect(320 * 240)
            val short = ByteBuffer.allocateDirect(10)
            val u = ByteBuffer.allocateDirect(160 * 120)
            val v = ByteBuffer.allocateDirect(160 * 120)
            // Fine as given.
            stream.pushI420(320u, 240u, y, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0)
            stream.pushNv12(320u, 240u, y, 320u, ByteBuffer.allocateDirect(320 * 120), 320u, 0u, Rotation.DEG90)
            stream.pushAudio(ShortArray(480).asList(), 0u)

            try {
                stream.pushI420(320u, 240u, short, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0)
                fail("a short Y plane was accepted")
            } catch (e: CaptureException.InvalidFrame) {
                assertTrue(e.reason, e.reason.isNotEmpty())
            }
            try {
                stream.pushNv12(320u, 240u, y, 100u, u, 320u, 0u, Rotation.DEG0)
                fail("a stride smaller than the width was accepted")
            } catch (e: CaptureException.InvalidFrame) {
            }
            // A plane runs from the buffer's position to its limit: 16 bytes in, one row short.
            val late = ByteBuffer.allocateDirect(320 * 240 + 16).position(16 + 320) as ByteBuffer
            try {
                stream.pushI420(320u, 240u, late, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0)
                fail("a Y plane one row short (after its position) was accepted")
            } catch (e: CaptureException.InvalidFrame) {
                assertTrue(e.reason, e.reason.contains("Y plane has ${320 * 239} bytes"))
            }
            late.position(16)
            stream.pushI420(320u, 240u, late, 320u, u, 160u, v, 160u, 0u, Rotation.DEG180)
            assertEquals(16, late.position())
            try {
                stream.pushAudio(ShortArray(100).asList(), 0u)
                fail("100 samples were accepted")
            } catch (e: CaptureException.AudioLength) {
                assertEquals(100uL, e.samples)
            }
            try {
                stream.pushNv12(320u, 240u, ByteBuffer.allocate(320 * 240), 320u, u, 320u, 0u, Rotation.DEG0)
                fail("a heap ByteBuffer was accepted")
            } catch (e: IllegalArgumentException) {
            }
        }
        try {
            stream.videoEnabled()
            fail("a closed LocalStream was usable")
        } catch (e: IllegalStateException) {
        }
    }

    /** [buffer]'s address at its position, as the generated pushI420At / pushNv12At take it. */
    private fun at(buffer: ByteBuffer): ULong =
        if (!buffer.hasRemaining()) 0uL
        else (Pointer.nativeValue(Native.getDirectBufferPointer(buffer)) + buffer.position()).toULong()

    /** What [push] threw: its class and message, to compare one way of pushing with another. */
    private fun thrown(push: () -> Unit): String {
        val e = runCatching(push).exceptionOrNull() ?: throw AssertionError("the push was accepted")
        return "${e.javaClass.name}: ${e.message}"
    }

    @Test
    fun framePushesFailAsTheGeneratedMethodsDo() {
        val stream = LocalStream(StreamConstraints(audio = false, video = VideoConstraints(320u, 240u, 30u, 600_000u)))
        val y = ByteBuffer.allocateDirect(320 * 240)
        val u = ByteBuffer.allocateDirect(160 * 120)
        val v = ByteBuffer.allocateDirect(160 * 120)
        val uvShort = ByteBuffer.allocateDirect(320 * 119)
        val empty = ByteBuffer.allocateDirect(0)
        stream.use {
            // Each bad push through Frames.kt's entry points throws what the UniFFI method
            // throws for the same planes, down to the reason.
            val cases = listOf(
                "a short Y plane" to Pair(
                    { stream.pushI420(320u, 240u, y.duplicate().limit(10) as ByteBuffer, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0) },
                    { stream.pushI420At(320u, 240u, at(y), 10uL, 320u, at(u), u.remaining().toULong(), 160u, at(v), v.remaining().toULong(), 160u, 0u, 0u) },
                ),
                "an NV12 UV plane one row short" to Pair(
                    { stream.pushNv12(320u, 240u, y, 320u, uvShort, 320u, 0u, Rotation.DEG90) },
                    { stream.pushNv12At(320u, 240u, at(y), y.remaining().toULong(), 320u, at(uvShort), uvShort.remaining().toULong(), 320u, 0u, 90u) },
                ),
                "an empty (null) buffer for a plane that needs bytes" to Pair(
                    { stream.pushI420(320u, 240u, y, 320u, empty, 160u, v, 160u, 0u, Rotation.DEG0) },
                    { stream.pushI420At(320u, 240u, at(y), y.remaining().toULong(), 320u, 0uL, 0uL, 160u, at(v), v.remaining().toULong(), 160u, 0u, 0u) },
                ),
                "a stride under the width" to Pair(
                    { stream.pushNv12(320u, 240u, y, 100u, u, 320u, 0u, Rotation.DEG0) },
                    { stream.pushNv12At(320u, 240u, at(y), y.remaining().toULong(), 100u, at(u), u.remaining().toULong(), 320u, 0u, 0u) },
                ),
            )
            for ((case, pushes) in cases) {
                val viaFrames = thrown(pushes.first)
                assertTrue("$case: $viaFrames", viaFrames.startsWith("dev.duet.CaptureException\$InvalidFrame: reason="))
                assertEquals(case, thrown(pushes.second), viaFrames)
            }
            try {
                stream.pushI420(320u, 240u, y, 320u, empty, 160u, v, 160u, 0u, Rotation.DEG0)
                fail("an empty U plane was accepted")
            } catch (e: CaptureException.InvalidFrame) {
                assertTrue(e.reason, e.reason.contains("U plane has 0 bytes"))
            }
            // A failed push leaves nothing behind: the next one goes through.
            stream.pushI420(320u, 240u, y, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0)
        }
        // Closed after pushes (its push handle made) and closed before any: the generated
        // methods' IllegalStateException either way.
        val closedMessage = thrown { stream.pushNv12At(320u, 240u, at(y), y.remaining().toULong(), 320u, at(u), u.remaining().toULong(), 320u, 0u, 0u) }
        assertTrue(closedMessage, closedMessage.startsWith("java.lang.IllegalStateException: "))
        assertEquals(closedMessage, thrown { stream.pushNv12(320u, 240u, y, 320u, u, 320u, 0u, Rotation.DEG0) })
        val neverPushed = LocalStream(StreamConstraints(audio = false, video = VideoConstraints(320u, 240u, 30u, 600_000u)))
        neverPushed.close()
        assertEquals(closedMessage, thrown { neverPushed.pushI420(320u, 240u, y, 320u, u, 160u, v, 160u, 0u, Rotation.DEG0) })
    }

    @Test
    fun closingAStreamMidPushIsSafe() {
        // A camera thread pushes while another closes the stream: each push either goes
        // through or throws IllegalStateException, never reads a freed stream.
        val y = ByteBuffer.allocateDirect(320 * 240)
        val uv = ByteBuffer.allocateDirect(320 * 120)
        repeat(20) { round ->
            val stream = LocalStream(StreamConstraints(audio = false, video = VideoConstraints(320u, 240u, 30u, 600_000u)))
            stream.pushNv12(320u, 240u, y, 320u, uv, 320u, 0u, Rotation.DEG0)
            val failure = AtomicReference<Throwable?>(null)
            val camera = Thread {
                try {
                    while (true) {
                        stream.pushNv12(320u, 240u, y, 320u, uv, 320u, 0u, Rotation.DEG0)
                    }
                } catch (e: IllegalStateException) {
                } catch (e: Throwable) {
                    failure.set(e)
                }
            }
            camera.start()
            Thread.sleep((round % 5).toLong())
            stream.close()
            camera.join(10_000)
            assertTrue("round $round: the pusher did not stop after close()", !camera.isAlive)
            failure.get()?.let { throw AssertionError("round $round", it) }
        }
    }

    @Test
    fun rendererColourConversion() {
        // 2x2 picture: one chroma sample; four luma values.
        fun argb(y: List<Int>, u: Int, v: Int): IntArray {
            val src = (y + u + v).map { it.toByte() }.toByteArray()
            return IntArray(4).also { I420ToArgb.convert(src, 2, 2, it) }
        }
        fun rgb(p: Int) = Triple((p shr 16) and 0xff, (p shr 8) and 0xff, p and 0xff)
        fun near(p: Int, r: Int, g: Int, b: Int) {
            val (pr, pg, pb) = rgb(p)
            assertEquals("alpha of ${Integer.toHexString(p)}", 0xff, (p ushr 24) and 0xff)
            assertTrue("${rgb(p)} is not near ($r, $g, $b)", abs(pr - r) <= 2 && abs(pg - g) <= 2 && abs(pb - b) <= 2)
        }
        val grey = argb(listOf(16, 235, 126, 126), 128, 128)
        near(grey[0], 0, 0, 0)
        near(grey[1], 255, 255, 255)
        near(grey[2], 128, 128, 128)
        near(argb(listOf(81, 81, 81, 81), 90, 240)[0], 255, 0, 0)   // BT.601 red
        near(argb(listOf(145, 145, 145, 145), 54, 34)[0], 0, 255, 0)  // green
        near(argb(listOf(41, 41, 41, 41), 240, 110)[0], 0, 0, 255)    // blue

        // Odd sizes: chroma planes round up.
        val w = 3
        val h = 3
        val src = ByteArray(w * h + 2 * 2 * 2) { if (it < w * h) 235.toByte() else 128.toByte() }
        val out = IntArray(w * h)
        I420ToArgb.convert(src, w, h, out)
        out.forEach { near(it, 255, 255, 255) }
        assertEquals(Rotation.DEG90, Yuv420Pusher.rotation(450))
        assertEquals(Rotation.DEG270, Yuv420Pusher.rotation(-90))
    }
}
