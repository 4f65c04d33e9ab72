package dev.duet

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

// A real `duet serve` for JVM tests: the library's own (src/test) and the example app's,
// which add this directory to their test sources.

/**
 * The `duet` binary: `-Dduet.bin=PATH`, else `$DUET_BIN`, else `target/debug/duet` in the
 * first directory up from the working directory that has one.
 */
object DuetBinary {
    val path: String by lazy {
        System.getProperty("duet.bin")?.takeIf { it.isNotEmpty() }
            ?: System.getenv("DUET_BIN")?.takeIf { it.isNotEmpty() }
            ?: generateSequence(File(System.getProperty("user.dir")).absoluteFile) { it.parentFile }
                .map { File(it, "target/debug/duet") }
                .firstOrNull { it.canExecute() }?.path
            ?: error("no duet binary: build it (cargo build -p duet-cli) or pass -Dduet.bin=PATH")
    }

    /** Runs `duet ARGS` to completion and returns its stdout, trimmed. */
    fun run(vararg args: String): String {
        val process = ProcessBuilder(listOf(path) + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .also { devEnvironment(it) }
            .start()
        val out = process.inputStream.bufferedReader().readText()
        check(process.waitFor(10, TimeUnit.SECONDS)) { "duet ${args.joinToString(" ")} did not finish" }
        check(process.exitValue() == 0) { "duet ${args.joinToString(" ")} exited ${process.exitValue()}" }
        return out.trim()
    }

    /** Development mode: no secret from the caller's environment, so tokens and server agree. */
    fun devEnvironment(builder: ProcessBuilder) {
        builder.environment().keys.removeAll { it.startsWith("DUET_") }
    }
}

/**
 * A `duet serve` of the test's own, on loopback with ephemeral ports (signaling and TURN)
 * and a 1 s ring timeout. Development mode: `duet token` mints tokens it accepts.
 */
class DuetServer private constructor(
    private val process: Process,
    val url: String,
    private val dataDir: File,
) : AutoCloseable {
    /** The server's `/metrics` text. */
    fun metrics(): String = java.net.URL("$url/metrics").readText()

    fun token(uid: String): String = DuetBinary.run("token", "--uid", uid)

    fun config(uid: String) = ClientConfig(
        serverUrl = url,
        token = token(uid),
        deviceId = null,
        bindAddresses = listOf("127.0.0.1:0"),
    )

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
        dataDir.deleteRecursively()
    }

    companion object {
        private val LISTENING = Regex("""duet-server listening on (https?://\S+)""")

        /**
         * [listen]: an ephemeral port unless told (the address of a stopped server restarts
         * it in place); [secret]: a production server's, which hands out no development tokens;
         * [extraArgs]: more flags ([FakePush.serveArgs], say).
         */
        fun start(
            ringTimeoutSeconds: Int = 1,
            listen: String = "127.0.0.1:0",
            secret: String? = null,
            extraArgs: List<String> = emptyList(),
        ): DuetServer {
            // Push registrations go to a directory of the server's own, not ~/.local/share.
            val dataDir = java.nio.file.Files.createTempDirectory("duet-test-server").toFile()
            val builder = ProcessBuilder(
                listOf(
                    DuetBinary.path, "serve",
                    "--listen", listen,
                    "--turn-listen", "127.0.0.1:0",
                    "--ring-timeout", ringTimeoutSeconds.toString(),
                    "--data-dir", dataDir.path,
                ) + (secret?.let { listOf("--secret", it) } ?: emptyList()) + extraArgs,
            ).redirectError(ProcessBuilder.Redirect.DISCARD)
            DuetBinary.devEnvironment(builder)
            val process = builder.start()
            val lines = LinkedBlockingQueue<String>()
            // Reads stdout for good, so the server never blocks on a full pipe.
            Thread({
                try {
                    BufferedReader(InputStreamReader(process.inputStream)).useLines { seq -> seq.forEach { lines.add(it) } }
                } catch (_: java.io.IOException) {
                    // The server was stopped.
                }
            }, "duet-serve-stdout").apply { isDaemon = true; start() }
            val first = lines.poll(10, TimeUnit.SECONDS)
            val url = first?.let { LISTENING.find(it)?.groupValues?.get(1) }
            if (url == null) {
                process.destroyForcibly()
                dataDir.deleteRecursively()
                error("duet serve did not start (first line: $first)")
            }
            return DuetServer(process, url, dataDir)
        }
    }
}
