package dev.duet

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.URLDecoder
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * Duet's fake APNs and FCM (rust/server/examples/fake-push) for JVM tests: a `duet serve`
 * started with [serveArgs] pushes there over HTTP/2 with TLS (a test CA), and [nextFcmData]
 * hands back each FCM message's `data` as the fake received it, for the code under test to
 * handle as Firebase would deliver it. The fake checks what Google checks (the OAuth2
 * grant, the access token, the message); a request it refused fails [nextFcmData].
 */
class FakePush private constructor(
    private val process: Process,
    private val dir: File,
    val serveArgs: List<String>,
    private val lines: LinkedBlockingQueue<String>,
) : AutoCloseable {
    /** One FCM push: its `data`, and when the fake got it (wall clock, ms). */
    class FcmPush(val data: Map<String, String>, val receivedAtMs: Long, val ttl: String, val token: String)

    /** The next FCM push the fake accepted, within [seconds]. */
    fun nextFcm(seconds: Long = 10): FcmPush {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
        var push: String? = null
        while (true) {
            val left = deadline - System.nanoTime()
            val line = lines.poll(left.coerceAtLeast(0), TimeUnit.NANOSECONDS)
                ?: error("no FCM push reached the fake within $seconds s")
            when {
                line.startsWith("problem ") -> error("the fake push service refused: $line")
                line.startsWith("push ") -> push = line
                line.startsWith("fcm-data ") && push != null -> return FcmPush(
                    data = decodeForm(line.removePrefix("fcm-data ")),
                    receivedAtMs = field(push, "received_unix_ms").toLong(),
                    ttl = field(push, "expiry"),
                    token = field(push, "token"),
                )
            }
        }
    }

    override fun close() {
        // The fake exits when its stdin closes.
        runCatching { process.outputStream.close() }
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
        dir.deleteRecursively()
    }

    companion object {
        /** `-Dduet.fakePush=PATH`, else `$DUET_FAKE_PUSH`, else beside the `duet` binary. */
        val path: String by lazy {
            System.getProperty("duet.fakePush")?.takeIf { it.isNotEmpty() }
                ?: System.getenv("DUET_FAKE_PUSH")?.takeIf { it.isNotEmpty() }
                ?: File(File(DuetBinary.path).parentFile, "examples/fake-push").path
        }

        fun start(): FakePush {
            val dir = java.nio.file.Files.createTempDirectory("duet-fake-push").toFile()
            val process = ProcessBuilder(path, dir.path).redirectError(ProcessBuilder.Redirect.DISCARD).start()
            val lines = LinkedBlockingQueue<String>()
            Thread({
                try {
                    BufferedReader(InputStreamReader(process.inputStream)).useLines { seq -> seq.forEach { lines.add(it) } }
                } catch (_: java.io.IOException) {
                    // Stopped.
                }
            }, "fake-push-stdout").apply { isDaemon = true; start() }
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
            while (true) {
                val line = lines.poll((deadline - System.nanoTime()).coerceAtLeast(0), TimeUnit.NANOSECONDS)
                if (line == null) {
                    process.destroyForcibly()
                    dir.deleteRecursively()
                    error("fake-push ($path) did not start")
                }
                if (line.startsWith("serve-args ")) {
                    return FakePush(process, dir, line.removePrefix("serve-args ").split('\t'), lines)
                }
            }
        }

        private fun decodeForm(form: String): Map<String, String> =
            form.split('&').filter { it.isNotEmpty() }.associate { pair ->
                val (k, v) = pair.split('=', limit = 2).let { it[0] to it.getOrElse(1) { "" } }
                URLDecoder.decode(k, "UTF-8") to URLDecoder.decode(v, "UTF-8")
            }

        /** A top-level string or number field of the fake's one-line JSON (no nesting before it). */
        private fun field(json: String, name: String): String {
            val m = Regex(""""$name":("([^"\\]*)"|(\d+))""").find(json) ?: error("no $name in $json")
            return m.groupValues[2].ifEmpty { m.groupValues[3] }
        }
    }
}
