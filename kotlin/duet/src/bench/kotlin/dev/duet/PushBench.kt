// What a 1280x720 camera push from Kotlin costs through the real bindings (JNA), as a ratio
// to a memcpy of the same bytes, and the fixed cost of a push alone. Run by bench/ffi-push.
//
// Each repeat times one push and, right beside it, a copy of the frame's 1,382,400 bytes
// between two direct ByteBuffers (the JVM's memcpy: Unsafe.copyMemory). A ratio is the
// push's min (median, max) over the copy's min (median, max). The fixed cost is a push with
// video disabled (the engine returns before reading a pixel): everything but the pixels.
package dev.duet

import java.nio.ByteBuffer

private const val WIDTH = 1280
private const val HEIGHT = 720
private const val CHROMA = (WIDTH / 2) * (HEIGHT / 2)
private const val FRAME_BYTES = WIDTH * HEIGHT + 2 * CHROMA

private fun noise(len: Int, seed: Int): ByteBuffer {
    val buffer = ByteBuffer.allocateDirect(len)
    var x = seed * -1640531535 or 1
    for (i in 0 until len) {
        x = x xor (x shl 13); x = x xor (x ushr 17); x = x xor (x shl 5)
        buffer.put(i, (x ushr 24).toByte())
    }
    return buffer
}

private fun spread(nanos: LongArray): DoubleArray {
    val sorted = nanos.sortedArray()
    return doubleArrayOf(sorted.first() / 1e3, sorted[sorted.size / 2] / 1e3, sorted.last() / 1e3)
}

private inline fun timed(block: () -> Unit): Long {
    val start = System.nanoTime()
    block()
    return System.nanoTime() - start
}

private fun f(v: Double) = String.format("%6.2f", v)

fun main(args: Array<String>) {
    val repeats = args.firstOrNull()?.toIntOrNull()?.coerceAtLeast(1) ?: 300
    val stream = LocalStream(StreamConstraints(audio = false,
        video = VideoConstraints(WIDTH.toUInt(), HEIGHT.toUInt(), 30u, 1_500_000u)))
    val y = noise(WIDTH * HEIGHT, 1)
    val u = noise(CHROMA, 2)
    val v = noise(CHROMA, 3)
    val uv = noise(2 * CHROMA, 4)
    val src = noise(FRAME_BYTES, 5)
    val dst = ByteBuffer.allocateDirect(FRAME_BYTES)
    val w = WIDTH.toUInt()
    val h = HEIGHT.toUInt()
    val pushes = linkedMapOf<String, () -> Unit>(
        "I420" to { stream.pushI420(w, h, y, w, u, w / 2u, v, w / 2u, 0u, Rotation.DEG0) },
        "NV12" to { stream.pushNv12(w, h, y, w, uv, w, 0u, Rotation.DEG90) },
    )
    val memcpy = { dst.clear(); src.clear(); dst.put(src); Unit }

    // Warm-up: the JIT compiles the call path, malloc settles on the frame's size.
    repeat(300) { pushes.values.forEach { it() }; memcpy() }

    println("Kotlin (JVM ${System.getProperty("java.version")}, JNA), ${WIDTH}x$HEIGHT, $repeats repeats, min / median / max")
    println(String.format("%-22s %22s %24s %24s", "", "push ÷ memcpy", "push µs", "memcpy µs"))
    for ((name, push) in pushes) {
        val pushTimes = LongArray(repeats)
        val copyTimes = LongArray(repeats)
        for (i in 0 until repeats) {
            copyTimes[i] = timed(memcpy)
            pushTimes[i] = timed(push)
        }
        val p = spread(pushTimes)
        val c = spread(copyTimes)
        println(String.format("%-22s %s %s %s   %7.1f %7.1f %7.1f   %7.1f %7.1f %7.1f",
            "$name push", f(p[0] / c[0]), f(p[1] / c[1]), f(p[2] / c[2]),
            p[0], p[1], p[2], c[0], c[1], c[2]))
    }

    // The fixed cost: video disabled, so only the call itself is left. Each sample is the
    // mean of a batch of calls, since one call is near the clock's resolution.
    stream.setVideoEnabled(false)
    val batch = 1000
    for ((name, push) in pushes) {
        repeat(5 * batch) { push() }
        val samples = LongArray(repeats) { timed { repeat(batch) { push() } } / batch }
        val s = spread(samples.map { it * 1 }.toLongArray())
        println(String.format("%-22s %22s   %7.2f %7.2f %7.2f", "$name fixed cost", "", s[0], s[1], s[2]))
    }
    stream.close()
}
