// Swift spellings for the few places where the generated API reads wrong, and safe access
// to a video frame's bytes. Everything here forwards to the generated API in Duet.swift;
// behaviour belongs in the Rust engine.

import Foundation

extension VideoCall {
    /// Connects and authenticates. Returns once the server has welcomed this device, so a
    /// wrong URL or a refused token throws `ConnectError` here; after that, a dropped
    /// connection is retried in the background and calls resume. `delegate` hears incoming
    /// calls.
    ///
    /// - Parameters:
    ///   - videoCodecs: makes every call's video encoder and decoder. Left out, the device's
    ///     hardware H.264 where VideoToolbox exists (`VideoToolboxCodecs.withFallback()`,
    ///     OpenH264 for what fails to start), OpenH264 elsewhere (`softwareVideoCodecs()`).
    ///   - tlsConnector: makes the TLS connections of a `wss://` server. Left out, the
    ///     system's where Network.framework exists (`NetworkTlsConnector`: the Apple libraries
    ///     have no TLS of their own), the library's own elsewhere (Linux).
    public static func connect(
        config: ClientConfig,
        delegate: VideoCallDelegate,
        videoCodecs: VideoCodecs? = nil,
        tlsConnector: TlsConnector? = nil
    ) async throws -> VideoCall {
        try await connectWithCodecs(
            config: config, delegate: delegate, videoCodecs: videoCodecs ?? platformVideoCodecs(),
            tlsConnector: tlsConnector ?? platformTlsConnector())
    }

    /// Calls `uid`, as `callWithUid:localStream:data:` did: hangs up any call under way on
    /// this client first (one call at a time). Set the returned conversation's delegate to
    /// hear the answer.
    ///
    /// - Parameters:
    ///   - data: custom text handed to the callee's `didReceiveCallWithConversation`.
    ///   - iceTransportPolicy: `.relay` sends the media through the TURN relay only.
    /// - Throws: `ActionError`: `.InvalidArgument` with kind `.uid` (empty or malformed),
    ///   `.callingYourself` or `.dataTooLong`; `.Closed` (no end reason) once the client is
    ///   shut down.
    @discardableResult
    public func call(
        uid: String,
        localStream: LocalStream,
        data: String? = nil,
        iceTransportPolicy: IceTransportPolicy = .all
    ) throws -> Conversation {
        try call(
            remoteUid: uid,
            localStream: localStream,
            options: CallOptions(data: data, iceTransportPolicy: iceTransportPolicy)
        )
    }
}

/// The codecs of a client whose app names none: the hardware's where the platform has
/// VideoToolbox; elsewhere nil, which the engine reads as OpenH264.
func platformVideoCodecs() -> VideoCodecs? {
    #if canImport(VideoToolbox)
    return VideoToolboxCodecs.withFallback()
    #else
    return nil
    #endif
}

/// The system's TLS for `wss://` where there is one: Network.framework on Apple platforms.
func platformTlsConnector() -> TlsConnector? {
    #if canImport(Network)
    return NetworkTlsConnector()
    #else
    return nil
    #endif
}

extension Conversation {
    /// Sets the delegate, as `conversation.delegate = self` did. The conversation holds it
    /// strongly; a delegate that holds the conversation makes a cycle until the
    /// conversation is dropped (e.g. in `didClose`).
    public func setDelegate(_ delegate: ConversationDelegate) {
        setDelegate(delegate: delegate)
    }
}

/// The planes of a `VideoFrame`, valid only inside `VideoFrame.withUnsafePlanes`.
public struct VideoFramePlanes {
    public let width: Int
    public let height: Int
    public let chromaWidth: Int
    public let chromaHeight: Int
    /// `height` rows of `yStride` bytes.
    public let y: UnsafeRawBufferPointer
    public let yStride: Int
    /// `chromaHeight` rows of `uStride` bytes.
    public let u: UnsafeRawBufferPointer
    public let uStride: Int
    /// `chromaHeight` rows of `vStride` bytes.
    public let v: UnsafeRawBufferPointer
    public let vStride: Int
}

extension VideoFrame {
    /// Calls `body` with the frame's tightly packed I420 bytes (Y, then U, then V).
    ///
    /// The bytes belong to the frame: the pointer is valid only inside `body`, so copy what
    /// you keep. (`dataAddress()` is valid while the frame object is alive; this keeps the
    /// frame alive for exactly as long as `body` runs.)
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            let count = Int(dataLen())
            let start = UnsafeRawPointer(bitPattern: UInt(dataAddress()))
            return try body(UnsafeRawBufferPointer(start: count > 0 ? start : nil, count: count))
        }
    }

    /// Calls `body` with the Y, U and V planes, e.g. to copy them into a `CVPixelBuffer`.
    /// The same lifetime rule as `withUnsafeBytes` applies.
    public func withUnsafePlanes<R>(_ body: (VideoFramePlanes) throws -> R) rethrows -> R {
        let width = Int(width()), height = Int(height())
        let chromaWidth = Int(chromaWidth()), chromaHeight = Int(chromaHeight())
        let yStride = Int(yStride()), uStride = Int(uStride()), vStride = Int(vStride())
        let yOffset = Int(yOffset()), uOffset = Int(uOffset()), vOffset = Int(vOffset())
        return try withUnsafeBytes { bytes in
            func plane(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
                precondition(offset + length <= bytes.count, "VideoFrame: plane outside the frame")
                return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
            }
            return try body(VideoFramePlanes(
                width: width,
                height: height,
                chromaWidth: chromaWidth,
                chromaHeight: chromaHeight,
                y: plane(yOffset, yStride * height),
                yStride: yStride,
                u: plane(uOffset, uStride * chromaHeight),
                uStride: uStride,
                v: plane(vOffset, vStride * chromaHeight),
                vStride: vStride
            ))
        }
    }

    /// A copy of the frame's packed I420 bytes (`dataLen()` of them), yours to keep.
    public func copyBytes() -> Data {
        withUnsafeBytes { Data($0) }
    }
}

// The engine's own messages ("cannot reach the server: …") for `description` and
// `localizedDescription`: the generated errors carry Rust's `Display` as `description`
// but do not declare the conformance that makes Swift use it.
extension ConnectError: CustomStringConvertible {}
extension ActionError: CustomStringConvertible {}
extension CaptureError: CustomStringConvertible {}
extension CallError: CustomStringConvertible {}
