package dev.duet

import dev.duet.android.ChromaGatherer
import dev.duet.android.H264ParameterSets
import dev.duet.android.scatterPlane
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Rule
import org.junit.Test
import java.nio.ByteBuffer
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import java.util.zip.CRC32

/**
 * Video codecs written in Kotlin carry a real call: they wrap the built-in OpenH264 (as a
 * platform codec's fallback does), count what passes, and the decoder hands back pictures
 * it re-made from its own buffers, which the other side's sink must then show byte for byte.
 */
class CodecTest {
    @get:Rule
    val timing = Timing()

    /**
     * Wraps [softwareVideoCodecs]; the decoder copies each picture into Kotlin buffers, and
     * throws a plain Kotlin exception on access unit number [failUnit] (0: never).
     */
    class CountingCodecs(private val failUnit: Int = 0) : VideoCodecs {
        private val software = softwareVideoCodecs()
        val framesEncoded = AtomicInteger()
        val unitsDecoded = AtomicInteger()
        val bitrates = CopyOnWriteArrayList<UInt>()
        /** When the encoder was asked for keyframes, and when the decoder failed (nanoTime). */
        val keyframesAsked = CopyOnWriteArrayList<Long>()
        @Volatile var failedAt = 0L
        /** The CRC-32 of every picture the decoder returned. */
        val pictures: MutableSet<Long> = ConcurrentHashMap.newKeySet()
        val badUnits = AtomicInteger()

        override fun encoder(config: VideoEncoderConfig): VideoEncoder {
            assertEquals(320u, config.width)
            val inner = software.encoder(config)
            return object : VideoEncoder {
                override fun encode(frame: VideoFrame, keyframe: Boolean, output: AccessUnitOutput) {
                    framesEncoded.incrementAndGet()
                    if (keyframe) keyframesAsked.add(System.nanoTime())
                    inner.encode(frame, keyframe, output)
                }

                override fun setTargetBitrate(bps: UInt) {
                    bitrates.add(bps)
                    inner.setTargetBitrate(bps)
                }
            }
        }

        override fun decoder(): VideoDecoder {
            val inner = software.decoder()
            return object : VideoDecoder {
                override fun decode(accessUnit: AccessUnit): VideoFrame? {
                    if (unitsDecoded.incrementAndGet() == failUnit) {
                        failedAt = System.nanoTime()
                        throw IllegalStateException("a decoder crash, on purpose")
                    }
                    // Read in place: Annex B starts with a start code.
                    val unit = accessUnit.byteBuffer()
                    if (unit.remaining() < 4 || unit.get(0) != 0.toByte() || unit.get(1) != 0.toByte()) badUnits.incrementAndGet()
                    val picture = inner.decode(accessUnit) ?: return null
                    return picture.use { p ->
                        val copy = ByteBuffer.allocateDirect(p.dataLen().toInt()).put(p.byteBuffer())
                        copy.flip()
                        val crc = CRC32().apply { update(copy.duplicate()) }.value
                        fun plane(offset: ULong, len: Int) =
                            copy.duplicate().apply { position(offset.toInt()); limit(offset.toInt() + len) }.slice()
                        val yLen = (p.width() * p.height()).toInt()
                        val cLen = (p.chromaWidth() * p.chromaHeight()).toInt()
                        val frame = videoFrameI420(
                            p.width(), p.height(),
                            plane(p.yOffset(), yLen), p.yStride(),
                            plane(p.uOffset(), cLen), p.uStride(),
                            plane(p.vOffset(), cLen), p.vStride(),
                            p.timestampUs(),
                        )
                        pictures.add(crc)
                        frame
                    }
                }
            }
        }
    }

    /** Checks each frame against the pictures the decoder made. */
    class CheckingSink(private val made: Set<Long>?) : VideoSink {
        val verified = AtomicInteger()
        val foreign = AtomicInteger()
        val crcs = CopyOnWriteArrayList<Long>()
        override fun onVideoFrame(frame: VideoFrame) = frame.use {
            assertEquals(320u, it.width())
            assertEquals(240u, it.height())
            val crc = CRC32().apply { update(it.byteBuffer()) }.value
            if (made == null || crc in made) verified.incrementAndGet() else foreign.incrementAndGet()
            if (crcs.size < 30) crcs.add(crc)
            Unit
        }
    }

    /**
     * Alice's video codecs and Bob's are Kotlin's. Alice's decoder throws once (a plain
     * exception, not a VideoCodecException): the call goes on, and the engine's keyframe
     * request reaches Bob's Kotlin encoder.
     */
    @Test
    fun aCallRunsThroughKotlinCodecs() = runBlocking {
        val codecs = CountingCodecs(failUnit = 20)
        val bobsCodecs = CountingCodecs()
        DuetServer.start().use { server ->
            Client.connect(server, "alice", codecs).use { alice ->
                Client.connect(server, "bob", bobsCodecs).use { bob ->
                    val call = connectedCall(alice, bob)
                    // Each side's video is encoded by its Kotlin encoder and decoded by the
                    // other side's Kotlin decoder: every frame a sink shows must be a picture
                    // that decoder made.
                    val aliceSees = CheckingSink(codecs.pictures)
                    val bobSees = CheckingSink(bobsCodecs.pictures)
                    call.aliceRemote.setVideoSink(aliceSees)
                    call.bobRemote.setVideoSink(bobSees)
                    val counts = {
                        "Alice: encoded ${codecs.framesEncoded}, decoded ${codecs.unitsDecoded}, " +
                            "verified ${aliceSees.verified}; Bob: encoded ${bobsCodecs.framesEncoded}, " +
                            "decoded ${bobsCodecs.unitsDecoded}, verified ${bobSees.verified}"
                    }
                    eventually("10 frames each way", lastSeen = counts) {
                        aliceSees.verified.get() >= 10 && bobSees.verified.get() >= 10
                    }
                    eventually("Alice's decoder failed once, then 10 more frames", lastSeen = counts) {
                        codecs.failedAt != 0L && aliceSees.verified.get() >= 20
                    }
                    eventually("Bob's encoder asked for a keyframe after her decoder failed") {
                        bobsCodecs.keyframesAsked.any { it > codecs.failedAt }
                    }
                    eventually("a bitrate target reached Alice's encoder") { codecs.bitrates.isNotEmpty() }
                    for (sink in listOf(aliceSees, bobSees)) {
                        assertEquals("frames shown that the decoder did not make", 0, sink.foreign.get())
                        val crcs = sink.crcs.toList()
                        assertTrue("the picture moves", crcs.toSet().size > crcs.size / 2)
                    }
                    for ((who, c) in listOf("Alice" to codecs, "Bob" to bobsCodecs)) {
                        assertTrue("$who's frames went through her encoder", c.framesEncoded.get() >= 10)
                        assertTrue("the other side's access units went through $who's decoder", c.unitsDecoded.get() >= 10)
                        assertTrue("$who's decoder made pictures", c.pictures.size >= 10)
                        assertEquals("access units that were not Annex B", 0, c.badUnits.get())
                    }
                    for (bps in codecs.bitrates) assertTrue("bitrate $bps within the maximum", bps in 50_000u..600_000u)
                    call.outgoing.hangUp()
                }
            }
        }
    }

    /** Codecs that cannot start, as a device's MediaCodec sometimes cannot. */
    class BrokenCodecs : VideoCodecs {
        val attempts = AtomicInteger()
        override fun encoder(config: VideoEncoderConfig): VideoEncoder {
            attempts.incrementAndGet()
            throw VideoCodecException.Unavailable("no H.264 encoder on this device")
        }
        override fun decoder(): VideoDecoder {
            attempts.incrementAndGet()
            throw IllegalStateException("the decoder crashed")
        }
    }

    @Test
    fun aPlatformCodecThatCannotStartFallsBackToOpenH264() = runBlocking {
        val broken = BrokenCodecs()
        val fellBack = CopyOnWriteArrayList<String>()
        val codecs = FallbackVideoCodecs(broken, onFallback = { what, e -> fellBack.add("$what: $e") })
        DuetServer.start().use { server ->
            Client.connect(server, "alice", codecs).use { alice ->
                Client.connect(server, "bob").use { bob ->
                    val call = connectedCall(alice, bob)
                    val aliceSees = CheckingSink(null)
                    val bobSees = CheckingSink(null)
                    call.aliceRemote.setVideoSink(aliceSees)
                    call.bobRemote.setVideoSink(bobSees)
                    eventually("5 frames each way") { aliceSees.verified.get() >= 5 && bobSees.verified.get() >= 5 }
                    assertEquals(2, broken.attempts.get())
                    assertTrue(fellBack.toString(), fellBack.any { it.startsWith("encoder:") && "no H.264 encoder" in it })
                    assertTrue(fellBack.toString(), fellBack.any { it.startsWith("decoder:") && "crashed" in it })
                    call.outgoing.hangUp()
                }
            }
        }
    }

    /**
     * The caller's encoder is made before the invite goes out (its offer needs the video
     * track), so a caller without one fails at once, before Bob's phone rings.
     */
    @Test
    fun codecsWithoutFallbackFailTheCallWithATypedError() = runBlocking {
        val broken = BrokenCodecs()
        DuetServer.start().use { server ->
            Client.connect(server, "alice", broken).use { alice ->
                Client.connect(server, "bob").use {
                    val aliceEvents = RecordingConversationDelegate()
                    val outgoing = alice.videoCall.call("bob", syntheticStream(), callOptions())
                    outgoing.setDelegate(aliceEvents)
                    var error: CallException? = null
                    while (error == null) {
                        when (val event = aliceEvents.next(keepErrors = true)) {
                            is Event.Failed -> error = event.error
                            is Event.Closed -> break
                            else -> {}
                        }
                    }
                    assertTrue("$error", error is CallException.NoCodec)
                    assertTrue("$error", "no H.264 encoder" in error.toString())
                    assertEquals("the encoder was asked for once", 1, broken.attempts.get())
                    outgoing.close()
                }
            }
        }
    }

    private fun direct(vararg bytes: Int): ByteBuffer =
        ByteBuffer.allocateDirect(bytes.size).apply { bytes.forEach { put(it.toByte()) }; flip() }

    private fun AccessUnitOutput.bytes(): List<Int> {
        val unit = finish().byteBuffer()
        return List(unit.remaining()) { unit.get(it).toInt() and 0xff }
    }

    @Test
    fun mediaCodecKeyframesGetTheParameterSetsItSentOnce() {
        val sets = H264ParameterSets()
        val config = direct(0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2)
        val idr = direct(0, 0, 0, 1, 0x65, 9)
        val delta = direct(0, 0, 0, 1, 0x41, 8)
        AccessUnitOutput().use { out ->
            // Before any config, a keyframe goes out as it is.
            sets.onOutput(idr.duplicate(), codecConfig = false, keyframe = true, output = out)
            assertEquals(listOf(0, 0, 0, 1, 0x65, 9), out.bytes())
            sets.onOutput(config, codecConfig = true, keyframe = false, output = out)
            assertTrue(out.isEmpty())
            sets.onOutput(idr.duplicate(), codecConfig = false, keyframe = true, output = out)
            assertEquals(listOf(0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 9), out.bytes())
            sets.onOutput(delta, codecConfig = false, keyframe = false, output = out)
            assertEquals(listOf(0, 0, 0, 1, 0x41, 8), out.bytes())
        }
    }

    @Test
    fun anOpenH264LibraryThatCannotBeLoadedIsATypedErrorAndTheBuiltInOneStays() {
        val refused = runCatching { useOpenh264Library("/nonexistent/libopenh264.so") }.exceptionOrNull()
        assertTrue("$refused", refused is VideoCodecException.Unavailable)
        assertTrue("$refused", refused!!.message!!.contains("cannot be loaded"))
        (softwareVideoCodecs().decoder() as AutoCloseable).close()
    }

    @Test
    fun planesScatteredForAnEncoderGatherBackUnchanged() {
        val cols = 5
        val rows = 3
        val packed = ByteBuffer.allocateDirect(cols * rows).apply { for (i in 0 until cols * rows) put(i, (i * 7).toByte()) }
        for (pixelStride in listOf(1, 2)) {
            val rowStride = cols * pixelStride + 3
            val strided = ByteBuffer.allocateDirect(rowStride * rows)
            scatterPlane(packed, cols, rows, strided, rowStride, pixelStride)
            val back = ChromaGatherer()
            back.gather(strided, rowStride, pixelStride, strided, rowStride, pixelStride, cols, rows)
            for (i in 0 until cols * rows) assertEquals("stride $pixelStride, byte $i", packed.get(i), back.u.get(i))
        }
        // A destination too short is refused, not overrun.
        val short = ByteBuffer.allocateDirect(cols * rows - 1)
        val refused = runCatching { scatterPlane(packed, cols, rows, short, cols, 1) }.exceptionOrNull()
        assertTrue("$refused", refused is IllegalArgumentException)
    }
}
