// Video codecs written in Swift (`VideoCodecs`, `VideoEncoder`, `VideoDecoder`): their
// bytes cross by address, as camera frames do. An `AccessUnit` and a `VideoFrame` are read
// in place, an encoder's output is appended from borrowed memory, and a decoder's picture
// is copied once from its planes. Platform-free: the VideoToolbox codecs (iOS/) build on
// these, and the tests run them on Linux.

import Foundation

extension AccessUnit {
    /// Calls `body` with the access unit's Annex-B bytes. The pointer is valid only inside
    /// `body`: copy what you keep.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            let count = Int(dataLen())
            let start = UnsafeRawPointer(bitPattern: UInt(dataAddress()))
            return try body(UnsafeRawBufferPointer(start: count > 0 ? start : nil, count: count))
        }
    }

    /// A copy of the access unit's bytes, yours to keep.
    public func copyBytes() -> Data {
        withUnsafeBytes { Data($0) }
    }
}

extension AccessUnitOutput {
    /// Appends encoded bytes (Annex B), borrowed for this call and copied.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try appendAt(address: address(bytes), len: UInt64(bytes.count))
    }

    /// Appends encoded bytes (Annex B), copied.
    public func append(_ data: Data) throws {
        try data.withUnsafeBytes { try append($0) }
    }
}

extension VideoFrame {
    /// A decoded picture from I420 planes, borrowed for this call and copied once into the
    /// engine's frame: what a `VideoDecoder` written in Swift returns. Strides may include
    /// row padding.
    ///
    /// - Throws: `VideoCodecError.InvalidInput` when the sizes, strides or plane lengths do
    ///   not describe a picture.
    public static func i420(
        width: UInt32, height: UInt32,
        y: UnsafeRawBufferPointer, yStride: UInt32,
        u: UnsafeRawBufferPointer, uStride: UInt32,
        v: UnsafeRawBufferPointer, vStride: UInt32,
        timestampUs: UInt64
    ) throws -> VideoFrame {
        try VideoFrame.fromI420At(
            width: width, height: height,
            yAddress: address(y), yLen: UInt64(y.count), yStride: yStride,
            uAddress: address(u), uLen: UInt64(u.count), uStride: uStride,
            vAddress: address(v), vLen: UInt64(v.count), vStride: vStride,
            timestampUs: timestampUs)
    }
}

/// Tries `primary` (the platform's hardware codecs) and uses `fallback` (by default
/// OpenH264, `softwareVideoCodecs()`) for any encoder or decoder `primary` cannot make.
/// `onFallback` hears why. The XCFramework has no OpenH264 inside: the fallback works once
/// the app has loaded one with `useOpenh264Library(path:)`.
public final class FallbackVideoCodecs: VideoCodecs, @unchecked Sendable {
    private let primary: VideoCodecs
    private let fallback: VideoCodecs
    private let onFallback: (String, Error) -> Void

    public init(
        primary: VideoCodecs, fallback: VideoCodecs = softwareVideoCodecs(),
        onFallback: @escaping (String, Error) -> Void = { _, _ in }
    ) {
        self.primary = primary
        self.fallback = fallback
        self.onFallback = onFallback
    }

    public func encoder(config: VideoEncoderConfig) throws -> VideoEncoder {
        do {
            return try primary.encoder(config: config)
        } catch {
            onFallback("encoder", error)
            return try fallback.encoder(config: config)
        }
    }

    public func decoder() throws -> VideoDecoder {
        do {
            return try primary.decoder()
        } catch {
            onFallback("decoder", error)
            return try fallback.decoder()
        }
    }
}

extension VideoCodecError: CustomStringConvertible {}
