// wss:// over the platform's TLS (Network.framework): what `VideoCall.connect` passes on Apple
// platforms, whose library carries no TLS of its own. The engine runs its WebSocket over the
// bytes; the system checks the server's certificate against the device's trust store.

#if canImport(Network)
import Foundation
import Network

/// Makes TLS connections with Network.framework: the system's TLS, trust store and proxies.
public final class NetworkTlsConnector: TlsConnector, @unchecked Sendable {
    public init() {}

    public func connection(host: String, port: UInt16) -> TlsConnection {
        NetworkTlsConnection(host: host, port: port)
    }
}

/// One connection. Network.framework calls back on `queue`, which also guards `opened`.
final class NetworkTlsConnection: TlsConnection, @unchecked Sendable {
    private let connection: NWConnection?
    private let endpoint: String
    private let queue = DispatchQueue(label: "dev.duet.tls")
    private var opened: CheckedContinuation<Void, Error>?

    init(host: String, port: UInt16) {
        endpoint = "\(host):\(port)"
        let tcp = NWProtocolTCP.Options()
        tcp.noDelay = true
        connection = NWEndpoint.Port(rawValue: port).map {
            NWConnection(
                host: NWEndpoint.Host(host), port: $0,
                using: NWParameters(tls: NWProtocolTLS.Options(), tcp: tcp))
        }
    }

    private func failed(_ reason: String) -> TlsError {
        .Failed(reason: "\(endpoint): \(reason)")
    }

    func connect() async throws {
        guard let connection else { throw failed("no such port") }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            queue.async {
                self.opened = continuation
                connection.stateUpdateHandler = { [weak self] state in self?.changed(to: state) }
                connection.start(queue: self.queue)
            }
        }
    }

    /// On `queue`: ends `connect` once, when the connection is ready or cannot be.
    private func changed(to state: NWConnection.State) {
        guard let opened else { return }
        switch state {
        case .ready:
            self.opened = nil
            opened.resume()
        case .failed(let error), .waiting(let error):
            // `.waiting` would retry on its own; the engine has its own backoff.
            self.opened = nil
            connection?.cancel()
            opened.resume(throwing: failed("\(error)"))
        case .cancelled:
            self.opened = nil
            opened.resume(throwing: failed("closed"))
        default:
            break
        }
    }

    func read(maxLen: UInt32) async throws -> Data {
        guard let connection else { throw failed("not connected") }
        return try await withCheckedThrowingContinuation { continuation in
            connection.receive(minimumIncompleteLength: 1, maximumLength: Int(maxLen)) {
                data, _, isComplete, error in
                if let data, !data.isEmpty {
                    continuation.resume(returning: data)
                } else if let error {
                    continuation.resume(throwing: self.failed("\(error)"))
                } else if isComplete {
                    continuation.resume(returning: Data())  // the server closed it
                } else {
                    continuation.resume(throwing: self.failed("read nothing"))
                }
            }
        }
    }

    func write(data: Data) async throws {
        guard let connection else { throw failed("not connected") }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            connection.send(
                content: data,
                completion: .contentProcessed { error in
                    if let error {
                        continuation.resume(throwing: self.failed("\(error)"))
                    } else {
                        continuation.resume()
                    }
                })
        }
    }

    func disconnect() {
        connection?.cancel()
    }
}
#endif
