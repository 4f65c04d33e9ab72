// Tells the engine when the device's network changes, so that calls restart ICE at once
// (VideoCall.networkChanged()) instead of waiting seconds for ICE to find the old path dead.
// Thin on purpose: the platform says "the path changed", the engine decides what to do.

#if canImport(Network)
import Network

/// Watches the device's network path and calls `networkChanged()` on `call` whenever it
/// changes (an interface came or went, Wi-Fi to cellular). Keep it for as long as the
/// VideoCall lives; `cancel()` (or letting it go) stops watching.
public final class NetworkChangeMonitor: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "dev.duet.network-monitor")
    private var last: NWPath?

    public init(call: VideoCall) {
        monitor.pathUpdateHandler = { [weak self, weak call] path in
            guard let self else { return }
            // The first update describes the network as it is: nothing changed yet.
            defer { self.last = path }
            guard let last = self.last, Self.differs(last, path) else { return }
            call?.networkChanged()
        }
        monitor.start(queue: queue)
    }

    /// A change a call cares about: satisfied or not, or another set of interfaces.
    private static func differs(_ a: NWPath, _ b: NWPath) -> Bool {
        a.status != b.status
            || a.availableInterfaces.map(\.name) != b.availableInterfaces.map(\.name)
            || a.isExpensive != b.isExpensive
    }

    public func cancel() { monitor.cancel() }

    deinit { monitor.cancel() }
}
#endif
