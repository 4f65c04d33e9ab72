// Camera frames into a LocalStream from `Data` planes, through `pushI420At`/`pushNv12At`:
// one FFI call with plain integer arguments. The planes' bytes are borrowed for the call
// (no copy here); the engine copies them once into its packed frame before it returns.

import Foundation

extension LocalStream {
    /// Pushes an I420 camera frame. The planes are borrowed for this call only and copied
    /// once, into a packed frame; strides may include row padding. Frames pushed while
    /// video is disabled are dropped.
    ///
    /// - Throws: `CaptureError.InvalidFrame` when the sizes, strides or plane lengths do not
    ///   describe a picture.
    public func pushI420(
        width: UInt32, height: UInt32,
        y: Data, yStride: UInt32,
        u: Data, uStride: UInt32,
        v: Data, vStride: UInt32,
        timestampUs: UInt64, rotation: Rotation
    ) throws {
        try y.withUnsafeBytes { yBytes in
            try u.withUnsafeBytes { uBytes in
                try v.withUnsafeBytes { vBytes in
                    try pushI420At(
                        width: width, height: height,
                        yAddress: address(yBytes), yLen: UInt64(yBytes.count), yStride: yStride,
                        uAddress: address(uBytes), uLen: UInt64(uBytes.count), uStride: uStride,
                        vAddress: address(vBytes), vLen: UInt64(vBytes.count), vStride: vStride,
                        timestampUs: timestampUs, rotationDegrees: rotation.degrees)
                }
            }
        }
    }

    /// Pushes an NV12 camera frame (Y plane, then interleaved U,V), the usual layout of iOS
    /// (`kCVPixelFormatType_420YpCbCr8BiPlanar*`) cameras. Borrowed, then copied once into a
    /// packed I420 frame.
    ///
    /// - Throws: `CaptureError.InvalidFrame` when the sizes, strides or plane lengths do not
    ///   describe a picture.
    public func pushNv12(
        width: UInt32, height: UInt32,
        y: Data, yStride: UInt32,
        uv: Data, uvStride: UInt32,
        timestampUs: UInt64, rotation: Rotation
    ) throws {
        try y.withUnsafeBytes { yBytes in
            try uv.withUnsafeBytes { uvBytes in
                try pushNv12(
                    width: width, height: height,
                    y: yBytes, yStride: yStride,
                    uv: uvBytes, uvStride: uvStride,
                    timestampUs: timestampUs, rotation: rotation)
            }
        }
    }

    /// Pushes an NV12 frame from memory the caller keeps valid for the call, such as a
    /// locked `CVPixelBuffer`'s planes: no `Data` is made around them.
    ///
    /// - Throws: `CaptureError.InvalidFrame` as `pushNv12(width:height:y:...)`.
    public func pushNv12(
        width: UInt32, height: UInt32,
        y: UnsafeRawBufferPointer, yStride: UInt32,
        uv: UnsafeRawBufferPointer, uvStride: UInt32,
        timestampUs: UInt64, rotation: Rotation
    ) throws {
        try pushNv12At(
            width: width, height: height,
            yAddress: address(y), yLen: UInt64(y.count), yStride: yStride,
            uvAddress: address(uv), uvLen: UInt64(uv.count), uvStride: uvStride,
            timestampUs: timestampUs, rotationDegrees: rotation.degrees)
    }
}

extension Rotation {
    /// Clockwise degrees, as `pushI420At` takes them.
    public var degrees: UInt32 {
        switch self {
        case .deg0: return 0
        case .deg90: return 90
        case .deg180: return 180
        case .deg270: return 270
        }
    }
}

/// The address of a borrowed buffer's first byte; 0 when it is empty (the engine reads none).
func address(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
    return UInt64(UInt(bitPattern: base))
}
