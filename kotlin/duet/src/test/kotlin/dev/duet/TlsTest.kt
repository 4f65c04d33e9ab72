package dev.duet

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Rule
import org.junit.Test
import java.io.File
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.util.concurrent.TimeUnit
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLSocketFactory
import javax.net.ssl.TrustManagerFactory

/**
 * `wss://` through [SocketTlsConnector], as on Android, where the library has no TLS of its own:
 * the engine's WebSocket runs over the JVM's SSLSocket, a `duet serve` on loopback serving a
 * certificate made for the test.
 */
class TlsTest {
    @get:Rule
    val timing = Timing()

    /** A self-signed certificate for [names] (openssl's), and its key, in a directory of its own. */
    private class TestCertificate(vararg names: String) : AutoCloseable {
        val dir: File = java.nio.file.Files.createTempDirectory("duet-tls-test").toFile()
        val cert = File(dir, "cert.pem")
        val key = File(dir, "key.pem")

        init {
            val process = ProcessBuilder(
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=duet-test",
                "-addext", "subjectAltName=" + names.joinToString(","),
                "-keyout", key.path, "-out", cert.path,
            ).redirectErrorStream(true).start()
            val output = process.inputStream.bufferedReader().readText()
            check(process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0) { "openssl: $output" }
        }

        val serveArgs get() = listOf("--tls-cert", cert.path, "--tls-key", key.path)

        /** Sockets that trust this certificate alone, as a device with it installed would. */
        fun trustingSockets(): SSLSocketFactory {
            val certificate = cert.inputStream().use { CertificateFactory.getInstance("X.509").generateCertificate(it) }
            val store = KeyStore.getInstance(KeyStore.getDefaultType()).apply {
                load(null)
                setCertificateEntry("duet-test", certificate)
            }
            val trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(store) }
            return SSLContext.getInstance("TLS").apply { init(null, trust.trustManagers, null) }.socketFactory
        }

        override fun close() {
            dir.deleteRecursively()
        }
    }

    @Test
    fun aCallOverWssThroughTheSocketTlsConnector() = runBlocking {
        TestCertificate("IP:127.0.0.1", "DNS:localhost").use { certificate ->
            DuetServer.start(extraArgs = certificate.serveArgs).use { server ->
                assertTrue(server.url, server.url.startsWith("https://"))
                val tls = SocketTlsConnector(certificate.trustingSockets())
                Client.connect(server, "alice", tlsConnector = tls).use { alice ->
                    Client.connect(server, "bob", tlsConnector = tls).use { bob ->
                        val call = connectedCall(alice, bob)
                        val frames = ConversationTest.CopyingSink()
                        call.bobRemote.setVideoSink(frames)
                        eventually("4 frames over the call") { frames.frames.size >= 4 }
                        call.outgoing.hangUp()
                        assertEquals(Event.Closed, call.bobEvents.next())
                        assertEquals(EndReason.HANGUP, call.incoming.closeReason())
                    }
                }
            }
        }
    }

    /** What connecting through [tls] throws: it must be `Unreachable`. */
    private suspend fun unreachable(server: DuetServer, tls: TlsConnector): String {
        try {
            Client.connect(server, "alice", tlsConnector = tls).close()
        } catch (e: ConnectException.Unreachable) {
            return e.toString()
        }
        fail("connected to a server whose certificate should have been refused")
        error("unreachable")
    }

    @Test
    fun aCertificateTheDeviceDoesNotTrustIsRefused() = runBlocking {
        TestCertificate("IP:127.0.0.1").use { certificate ->
            DuetServer.start(extraArgs = certificate.serveArgs).use { server ->
                // The JVM's own roots: nothing vouches for a certificate made a moment ago.
                val why = unreachable(server, SocketTlsConnector())
                assertTrue(why, why.contains("PKIX path building failed"))
            }
        }
    }

    @Test
    fun aCertificateForAnotherNameIsRefused() = runBlocking {
        TestCertificate("DNS:localhost").use { certificate ->
            DuetServer.start(extraArgs = certificate.serveArgs).use { server ->
                // Trusted, but the URL names 127.0.0.1: the host name check must say no.
                val why = unreachable(server, SocketTlsConnector(certificate.trustingSockets()))
                assertTrue(why, why.contains("No subject alternative names matching IP address 127.0.0.1"))
            }
        }
    }
}
