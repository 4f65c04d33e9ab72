package dev.duet

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.io.IOException
import java.net.InetSocketAddress
import java.net.Socket
import javax.net.ssl.SSLSocket
import javax.net.ssl.SSLSocketFactory

/**
 * `wss://` over the platform's TLS: an [SSLSocket] from [socketFactory], its certificate checked
 * for the server's host name. The default factory trusts what the device trusts (on Android the
 * system's CAs, and the user's where the app's network security configuration allows them; on
 * the JVM its cacerts). `VideoCall.connect` passes one on Android, whose library carries no TLS
 * of its own; a test or a private CA passes a factory from its own `SSLContext`.
 */
class SocketTlsConnector(
    private val socketFactory: SSLSocketFactory = SSLSocketFactory.getDefault() as SSLSocketFactory,
    private val connectTimeoutMs: Int = 10_000,
) : TlsConnector {
    override fun connection(host: String, port: UShort): TlsConnection =
        SocketTlsConnection(socketFactory, host, port.toInt(), connectTimeoutMs)
}

/** One connection: blocking socket I/O on [Dispatchers.IO]; [disconnect] ends any of it under way. */
private class SocketTlsConnection(
    private val factory: SSLSocketFactory,
    private val host: String,
    private val port: Int,
    private val connectTimeoutMs: Int,
) : TlsConnection {
    // Set before they block, so that [disconnect] can end a connect or handshake under way.
    @Volatile private var tcp: Socket? = null
    @Volatile private var tls: SSLSocket? = null
    @Volatile private var disconnected = false

    private fun failed(e: IOException) = TlsException.Failed("$host:$port: ${e.message ?: e.javaClass.simpleName}")

    private fun connected(): SSLSocket = tls ?: throw TlsException.Failed("$host:$port: not connected")

    override suspend fun connect() = withContext(Dispatchers.IO) {
        try {
            val tcp = Socket().apply { tcpNoDelay = true }
            this@SocketTlsConnection.tcp = tcp
            if (disconnected) throw IOException("disconnected")
            tcp.connect(InetSocketAddress(host, port), connectTimeoutMs)
            val tls = factory.createSocket(tcp, host, port, true) as SSLSocket
            // SSLSocket checks the chain only; the name is checked by asking for HTTPS's rules.
            tls.sslParameters = tls.sslParameters.apply { endpointIdentificationAlgorithm = "HTTPS" }
            this@SocketTlsConnection.tls = tls
            if (disconnected) throw IOException("disconnected")
            tls.startHandshake()
        } catch (e: IOException) {
            disconnect()
            throw failed(e)
        }
    }

    override suspend fun read(maxLen: UInt): ByteArray = withContext(Dispatchers.IO) {
        val buffer = ByteArray(maxLen.toInt())
        val n = try {
            connected().inputStream.read(buffer)
        } catch (e: IOException) {
            throw failed(e)
        }
        if (n <= 0) ByteArray(0) else buffer.copyOf(n)
    }

    override suspend fun write(data: ByteArray) = withContext(Dispatchers.IO) {
        try {
            val out = connected().outputStream
            out.write(data)
            out.flush()
        } catch (e: IOException) {
            throw failed(e)
        }
    }

    override fun disconnect() {
        disconnected = true
        for (socket in listOf(tls, tcp)) {
            try {
                socket?.close()
            } catch (_: IOException) {
                // Already closed.
            }
        }
    }
}
