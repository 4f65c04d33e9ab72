#if canImport(VideoToolbox)
import CoreMedia
import CoreVideo
import Foundation
import VideoToolbox

/// The device's H.264 hardware codecs (VideoToolbox), with OpenH264 for any encoder or
/// decoder that fails to start. Give it to `VideoCall.connect`:
///
///     let video = try await VideoCall.connect(
///         config: config, delegate: delegate, videoCodecs: VideoToolboxCodecs.withFallback())
///
/// Synchronous, as the engine calls: each `encode` waits for its frame
/// (`VTCompressionSessionCompleteFrames`), each `decode` decodes in place. The bitstream
/// conversions (Annex B <-> AVCC, parameter sets) are `H264Bitstream`'s, tested on Linux.
public final class VideoToolboxCodecs: VideoCodecs, @unchecked Sendable {
    public init() {}

    public func encoder(config: VideoEncoderConfig) throws -> VideoEncoder {
        try VideoToolboxEncoder(config: config)
    }

    public func decoder() throws -> VideoDecoder {
        VideoToolboxDecoder()
    }

    /// VideoToolbox first, OpenH264 where it fails to start.
    public static func withFallback() -> VideoCodecs {
        FallbackVideoCodecs(primary: VideoToolboxCodecs()) { what, error in
            NSLog("Duet: VideoToolbox H.264 %@ unavailable, using OpenH264: %@", what, "\(error)")
        }
    }
}

private func failed(_ what: String, _ status: OSStatus) -> VideoCodecError {
    .Failed(reason: "VideoToolbox \(what): OSStatus \(status)")
}

/// An I420 pixel buffer holding `frame`'s planes (one copy).
private func pixelBuffer(_ frame: VideoFrame) throws -> CVPixelBuffer {
    var buffer: CVPixelBuffer?
    let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
    let status = CVPixelBufferCreate(
        nil, Int(frame.width()), Int(frame.height()), kCVPixelFormatType_420YpCbCr8Planar,
        attributes, &buffer)
    guard status == kCVReturnSuccess, let buffer else { throw failed("pixel buffer", status) }
    CVPixelBufferLockBaseAddress(buffer, [])
    defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
    frame.withUnsafePlanes { p in
        for (index, (plane, stride, rows)) in [(p.y, p.yStride, p.height), (p.u, p.uStride, p.chromaHeight),
                                               (p.v, p.vStride, p.chromaHeight)].enumerated() {
            guard let base = CVPixelBufferGetBaseAddressOfPlane(buffer, index) else { continue }
            let destStride = CVPixelBufferGetBytesPerRowOfPlane(buffer, index)
            for row in 0..<rows {
                let source = UnsafeRawBufferPointer(rebasing: plane[(row * stride)..<(row * stride + stride)])
                (base + row * destStride).copyMemory(from: source.baseAddress!, byteCount: min(stride, destStride))
            }
        }
    }
    return buffer
}

final class VideoToolboxEncoder: VideoEncoder, @unchecked Sendable {
    private var session: VTCompressionSession?
    private let lock = NSLock()

    init(config: VideoEncoderConfig) throws {
        var made: VTCompressionSession?
        let status = VTCompressionSessionCreate(
            allocator: nil, width: Int32(config.width), height: Int32(config.height),
            codecType: kCMVideoCodecType_H264, encoderSpecification: nil, imageBufferAttributes: nil,
            compressedDataAllocator: nil, outputCallback: nil, refcon: nil, compressionSessionOut: &made)
        guard status == noErr, let made else {
            throw VideoCodecError.Unavailable(reason: "VideoToolbox H.264 encoder: OSStatus \(status)")
        }
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_RealTime, value: kCFBooleanTrue)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_ProfileLevel,
                             value: kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_AllowFrameReordering, value: kCFBooleanFalse)
        // Keyframes when the receiver asks (PLI), not on a timer.
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_MaxKeyFrameInterval, value: 3600 as CFNumber)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_ExpectedFrameRate, value: config.fps as CFNumber)
        VTSessionSetProperty(made, key: kVTCompressionPropertyKey_AverageBitRate,
                             value: config.maxBitrateBps as CFNumber)
        VTCompressionSessionPrepareToEncodeFrames(made)
        session = made
    }

    deinit {
        if let session { VTCompressionSessionInvalidate(session) }
    }

    func encode(frame: VideoFrame, keyframe: Bool, output: AccessUnitOutput) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let session else { throw VideoCodecError.Failed(reason: "encoder closed") }
        let image = try pixelBuffer(frame)
        let pts = CMTime(value: CMTimeValue(frame.timestampUs()), timescale: 1_000_000)
        let properties = keyframe ? [kVTEncodeFrameOptionKey_ForceKeyFrame: kCFBooleanTrue] as CFDictionary : nil
        var produced: Result<Void, Error> = .success(())
        let status = VTCompressionSessionEncodeFrame(
            session, imageBuffer: image, presentationTimeStamp: pts, duration: .invalid,
            frameProperties: properties, infoFlagsOut: nil
        ) { status, _, sample in
            guard status == noErr, let sample else {
                if status != noErr { produced = .failure(failed("encode", status)) }
                return
            }
            produced = Result { try Self.append(sample, to: output) }
        }
        guard status == noErr else { throw failed("encode", status) }
        VTCompressionSessionCompleteFrames(session, untilPresentationTimeStamp: pts)
        try produced.get()
    }

    /// The sample's AVCC NAL units as Annex B, with SPS and PPS first on keyframes.
    private static func append(_ sample: CMSampleBuffer, to output: AccessUnitOutput) throws {
        guard let block = CMSampleBufferGetDataBuffer(sample),
              let format = CMSampleBufferGetFormatDescription(sample) else { return }
        let attachments = CMSampleBufferGetSampleAttachmentsArray(sample, createIfNecessary: false)
            as? [[CFString: Any]]
        let keyframe = !(attachments?.first?[kCMSampleAttachmentKey_NotSync] as? Bool ?? false)
        var parameterSets: [Data] = []
        var lengthSize: Int32 = 4
        var count = 0
        CMVideoFormatDescriptionGetH264ParameterSetAtIndex(
            format, parameterSetIndex: 0, parameterSetPointerOut: nil, parameterSetSizeOut: nil,
            parameterSetCountOut: &count, nalUnitHeaderLengthOut: &lengthSize)
        if keyframe {
            for index in 0..<count {
                var pointer: UnsafePointer<UInt8>?
                var size = 0
                CMVideoFormatDescriptionGetH264ParameterSetAtIndex(
                    format, parameterSetIndex: index, parameterSetPointerOut: &pointer,
                    parameterSetSizeOut: &size, parameterSetCountOut: nil, nalUnitHeaderLengthOut: nil)
                if let pointer { parameterSets.append(Data(bytes: pointer, count: size)) }
            }
        }
        var length = 0
        var pointer: UnsafeMutablePointer<CChar>?
        let status = CMBlockBufferGetDataPointer(
            block, atOffset: 0, lengthAtOffsetOut: nil, totalLengthOut: &length, dataPointerOut: &pointer)
        guard status == kCMBlockBufferNoErr, let pointer else { throw failed("encoded data", status) }
        let avcc = UnsafeRawBufferPointer(start: pointer, count: length)
        try output.append(H264Bitstream.annexB(avcc: avcc, lengthSize: Int(lengthSize), parameterSets: parameterSets))
    }

    func setTargetBitrate(bps: UInt32) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let session else { return }
        let status = VTSessionSetProperty(session, key: kVTCompressionPropertyKey_AverageBitRate, value: bps as CFNumber)
        guard status == noErr else { throw failed("bitrate", status) }
    }
}

final class VideoToolboxDecoder: VideoDecoder, @unchecked Sendable {
    private var session: VTDecompressionSession?
    private var format: CMVideoFormatDescription?
    private var sps: Data?
    private var pps: Data?
    private let lock = NSLock()

    deinit {
        if let session { VTDecompressionSessionInvalidate(session) }
    }

    func decode(accessUnit: AccessUnit) throws -> VideoFrame? {
        lock.lock()
        defer { lock.unlock() }
        let (sample, newSps, newPps) = accessUnit.withUnsafeBytes { H264Bitstream.avcc(annexB: $0) }
        if let newSps, let newPps, newSps != sps || newPps != pps {
            try restart(sps: newSps, pps: newPps)
        }
        guard let session, let format, !sample.isEmpty else { return nil }
        let buffer = try sampleBuffer(sample, format: format, timestampUs: accessUnit.timestampUs())
        var decoded: Result<VideoFrame?, Error> = .success(nil)
        let status = VTDecompressionSessionDecodeFrame(
            session, sampleBuffer: buffer, flags: [], infoFlagsOut: nil
        ) { status, _, image, _, _ in
            guard status == noErr, let image else {
                if status != noErr { decoded = .failure(failed("decode", status)) }
                return
            }
            decoded = Result { try Self.frame(image, timestampUs: accessUnit.timestampUs()) }
        }
        guard status == noErr else { throw failed("decode", status) }
        return try decoded.get()
    }

    /// A new session for new parameter sets (the sender restarted or changed size).
    private func restart(sps: Data, pps: Data) throws {
        if let session { VTDecompressionSessionInvalidate(session) }
        session = nil
        var made: CMVideoFormatDescription?
        let status = sps.withUnsafeBytes { s in
            pps.withUnsafeBytes { p in
                let pointers = [s.bindMemory(to: UInt8.self).baseAddress!, p.bindMemory(to: UInt8.self).baseAddress!]
                return CMVideoFormatDescriptionCreateFromH264ParameterSets(
                    allocator: nil, parameterSetCount: 2, parameterSetPointers: pointers,
                    parameterSetSizes: [sps.count, pps.count], nalUnitHeaderLength: 4,
                    formatDescriptionOut: &made)
            }
        }
        guard status == noErr, let made else { throw failed("parameter sets", status) }
        let attributes = [kCVPixelBufferPixelFormatTypeKey: kCVPixelFormatType_420YpCbCr8Planar] as CFDictionary
        var newSession: VTDecompressionSession?
        let created = VTDecompressionSessionCreate(
            allocator: nil, formatDescription: made, decoderSpecification: nil,
            imageBufferAttributes: attributes, outputCallback: nil, decompressionSessionOut: &newSession)
        guard created == noErr, let newSession else {
            throw VideoCodecError.Unavailable(reason: "VideoToolbox H.264 decoder: OSStatus \(created)")
        }
        session = newSession
        format = made
        self.sps = sps
        self.pps = pps
    }

    private func sampleBuffer(_ sample: Data, format: CMVideoFormatDescription, timestampUs: UInt64) throws -> CMSampleBuffer {
        var block: CMBlockBuffer?
        var status = CMBlockBufferCreateWithMemoryBlock(
            allocator: nil, memoryBlock: nil, blockLength: sample.count, blockAllocator: nil,
            customBlockSource: nil, offsetToData: 0, dataLength: sample.count, flags: 0, blockBufferOut: &block)
        guard status == kCMBlockBufferNoErr, let block else { throw failed("block buffer", status) }
        status = sample.withUnsafeBytes {
            CMBlockBufferReplaceDataBytes(with: $0.baseAddress!, blockBuffer: block, offsetIntoDestination: 0,
                                          dataLength: sample.count)
        }
        guard status == kCMBlockBufferNoErr else { throw failed("block buffer", status) }
        var timing = CMSampleTimingInfo(
            duration: .invalid, presentationTimeStamp: CMTime(value: CMTimeValue(timestampUs), timescale: 1_000_000),
            decodeTimeStamp: .invalid)
        var sizes = [sample.count]
        var buffer: CMSampleBuffer?
        status = CMSampleBufferCreateReady(
            allocator: nil, dataBuffer: block, formatDescription: format, sampleCount: 1,
            sampleTimingEntryCount: 1, sampleTimingArray: &timing, sampleSizeEntryCount: 1,
            sampleSizeArray: &sizes, sampleBufferOut: &buffer)
        guard status == noErr, let buffer else { throw failed("sample buffer", status) }
        return buffer
    }

    /// The engine's frame from a decoded I420 pixel buffer (one copy).
    private static func frame(_ image: CVImageBuffer, timestampUs: UInt64) throws -> VideoFrame {
        CVPixelBufferLockBaseAddress(image, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(image, .readOnly) }
        func plane(_ index: Int) -> (UnsafeRawBufferPointer, UInt32) {
            let stride = CVPixelBufferGetBytesPerRowOfPlane(image, index)
            let rows = CVPixelBufferGetHeightOfPlane(image, index)
            let base = CVPixelBufferGetBaseAddressOfPlane(image, index)
            return (UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : stride * rows), UInt32(stride))
        }
        let (y, yStride) = plane(0), (u, uStride) = plane(1), (v, vStride) = plane(2)
        return try VideoFrame.i420(
            width: UInt32(CVPixelBufferGetWidth(image)), height: UInt32(CVPixelBufferGetHeight(image)),
            y: y, yStride: yStride, u: u, uStride: uStride, v: v, vStride: vStride, timestampUs: timestampUs)
    }
}
#endif
