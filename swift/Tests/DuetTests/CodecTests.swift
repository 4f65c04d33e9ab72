// Video codecs written in Swift carry a real call: they wrap the built-in OpenH264 (as a
// platform codec's fallback does) and count what passes, and the decoder hands back
// pictures it re-made from its own memory, which the sink must then show byte for byte.
// Also the Annex-B/AVCC plumbing the VideoToolbox codecs use, on real encoder output.

import Duet
import DuetTestSupport
import Foundation
import XCTest

/// Wraps `softwareVideoCodecs()`; the decoder copies each picture and returns the copy, and
/// throws a plain Swift error on access unit number `failUnit` (0: never).
final class CountingCodecs: VideoCodecs, @unchecked Sendable {
    private let software = softwareVideoCodecs()
    let failUnit: Int
    let failedAt = Locked<Date?>(nil)
    let keyframesAsked = Locked<[Date]>([])
    let framesEncoded = Locked(0)
    let unitsDecoded = Locked(0)
    let notAnnexB = Locked(0)
    let bitrates = Locked<[UInt32]>([])
    /// Every picture the decoder returned.
    let pictures = Locked<Set<Data>>([])

    init(failUnit: Int = 0) { self.failUnit = failUnit }

    func encoder(config: VideoEncoderConfig) throws -> VideoEncoder {
        CountingEncoder(inner: try software.encoder(config: config), codecs: self)
    }

    func decoder() throws -> VideoDecoder {
        CountingDecoder(inner: try software.decoder(), codecs: self)
    }
}

final class CountingEncoder: VideoEncoder, @unchecked Sendable {
    let inner: VideoEncoder
    let codecs: CountingCodecs
    init(inner: VideoEncoder, codecs: CountingCodecs) { self.inner = inner; self.codecs = codecs }

    func encode(frame: VideoFrame, keyframe: Bool, output: AccessUnitOutput) throws {
        codecs.framesEncoded.mutate { $0 += 1 }
        if keyframe { codecs.keyframesAsked.mutate { $0.append(Date()) } }
        try inner.encode(frame: frame, keyframe: keyframe, output: output)
    }

    func setTargetBitrate(bps: UInt32) throws {
        codecs.bitrates.mutate { $0.append(bps) }
        try inner.setTargetBitrate(bps: bps)
    }
}

final class CountingDecoder: VideoDecoder, @unchecked Sendable {
    let inner: VideoDecoder
    let codecs: CountingCodecs
    init(inner: VideoDecoder, codecs: CountingCodecs) { self.inner = inner; self.codecs = codecs }

    func decode(accessUnit: AccessUnit) throws -> VideoFrame? {
        struct Crash: Error {}
        if codecs.unitsDecoded.mutate({ $0 += 1; return $0 }) == codecs.failUnit {
            codecs.failedAt.mutate { $0 = Date() }
            throw Crash()
        }
        let startsWithStartCode = accessUnit.withUnsafeBytes { $0.count > 4 && $0[0] == 0 && $0[1] == 0 }
        if !startsWithStartCode { codecs.notAnnexB.mutate { $0 += 1 } }
        guard let picture = try inner.decode(accessUnit: accessUnit) else { return nil }
        let bytes = picture.copyBytes()
        let frame = try bytes.withUnsafeBytes { all -> VideoFrame in
            func plane(_ offset: UInt64, _ length: UInt32) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: all[Int(offset)..<(Int(offset) + Int(length))])
            }
            return try VideoFrame.i420(
                width: picture.width(), height: picture.height(),
                y: plane(picture.yOffset(), picture.yStride() * picture.height()), yStride: picture.yStride(),
                u: plane(picture.uOffset(), picture.uStride() * picture.chromaHeight()), uStride: picture.uStride(),
                v: plane(picture.vOffset(), picture.vStride() * picture.chromaHeight()), vStride: picture.vStride(),
                timestampUs: picture.timestampUs())
        }
        codecs.pictures.mutate { _ = $0.insert(bytes) }
        return frame
    }
}

/// Codecs that cannot start, as a device's hardware codec sometimes cannot.
final class BrokenCodecs: VideoCodecs, @unchecked Sendable {
    let attempts = Locked(0)
    struct Crash: Error {}

    func encoder(config: VideoEncoderConfig) throws -> VideoEncoder {
        attempts.mutate { $0 += 1 }
        throw VideoCodecError.Unavailable(reason: "no H.264 encoder on this device")
    }

    func decoder() throws -> VideoDecoder {
        attempts.mutate { $0 += 1 }
        throw Crash()
    }
}

final class CodecTests: DuetTestCase {
    /// Alice's codecs and Bob's are Swift's. Alice's decoder throws once (a plain Swift
    /// error, not a VideoCodecError): the call goes on, and the engine's keyframe request
    /// reaches Bob's Swift encoder.
    func testACallRunsThroughSwiftCodecs() async throws {
        let codecs = CountingCodecs(failUnit: 20)
        let bobsCodecs = CountingCodecs()
        let alice = try await connect("alice", videoCodecs: codecs)
        let bob = try await connect("bob", videoCodecs: bobsCodecs)
        let call = try await connectedCall(alice, bob)
        // Each side's video is encoded by its Swift encoder and decoded by the other side's
        // Swift decoder: every frame a sink shows must be a picture that decoder made.
        let atAlice = FrameCollector(keep: 10), atBob = FrameCollector(keep: 10)
        try XCTUnwrap(call.caller.lastStream).setVideoSink(sink: atAlice)
        try XCTUnwrap(call.callee.lastStream).setVideoSink(sink: atBob)
        let aliceFrames = try await atAlice.waitFor(10)
        let bobFrames = try await atBob.waitFor(10)
        for (who, frames, made) in [
            ("Alice", aliceFrames, codecs.pictures.value), ("Bob", bobFrames, bobsCodecs.pictures.value),
        ] {
            for frame in frames {
                XCTAssertTrue(made.contains(frame.bytes), "\(who) saw a frame her decoder did not make")
            }
        }
        for frames in [aliceFrames, bobFrames] {
            for frame in frames {
                XCTAssertEqual(frame.width, 160)
                XCTAssertEqual(frame.height, 120)
                XCTAssertEqual(frame.bytes.count, 160 * 120 * 3 / 2)
            }
            XCTAssertGreaterThan(Set(frames.map(\.bytes)).count, frames.count / 2, "the picture moves")
        }
        try await eventually("Alice's decoder failed once") { codecs.failedAt.value != nil }
        let failedAt = try XCTUnwrap(codecs.failedAt.value)
        try await eventually("Bob's encoder asked for a keyframe after her decoder failed") {
            bobsCodecs.keyframesAsked.value.contains { $0 > failedAt }
        }
        try await eventually("a bitrate target reached Alice's encoder") { !codecs.bitrates.value.isEmpty }
        for (who, counted) in [("Alice", codecs), ("Bob", bobsCodecs)] {
            XCTAssertGreaterThanOrEqual(counted.framesEncoded.value, 10, "\(who)'s frames through her encoder")
            XCTAssertGreaterThanOrEqual(counted.unitsDecoded.value, 10, "access units through \(who)'s decoder")
            XCTAssertEqual(counted.notAnnexB.value, 0, "access units \(who) got that were not Annex B")
        }
        for bps in codecs.bitrates.value {
            XCTAssertTrue((50_000...300_000).contains(bps), "bitrate \(bps) out of range")
        }
        call.outgoing.close()
    }

    func testAPlatformCodecThatCannotStartFallsBackToOpenH264() async throws {
        let broken = BrokenCodecs()
        let fellBack = Locked<[String]>([])
        let codecs = FallbackVideoCodecs(primary: broken) { what, error in
            fellBack.mutate { $0.append("\(what): \(error)") }
        }
        let alice = try await connect("alice", videoCodecs: codecs)
        let bob = try await connect("bob")
        let call = try await connectedCall(alice, bob)
        let atAlice = FrameCollector(keep: 5), atBob = FrameCollector(keep: 5)
        try XCTUnwrap(call.caller.lastStream).setVideoSink(sink: atAlice)
        try XCTUnwrap(call.callee.lastStream).setVideoSink(sink: atBob)
        _ = try await atAlice.waitFor(5)
        _ = try await atBob.waitFor(5)
        XCTAssertEqual(broken.attempts.value, 2)
        let heard = fellBack.value
        XCTAssertTrue(heard.contains { $0.hasPrefix("encoder:") && $0.contains("no H.264 encoder") }, "\(heard)")
        XCTAssertTrue(heard.contains { $0.hasPrefix("decoder:") }, "\(heard)")
        call.outgoing.close()
    }

    /// The caller's encoder is made before the invite goes out (its offer needs the video
    /// track), so a caller whose codecs cannot make one fails at once with a typed error.
    func testCodecsWithoutFallbackFailTheCallWithATypedError() async throws {
        let broken = BrokenCodecs()
        let alice = try await connect("alice", videoCodecs: broken)
        _ = try await connect("bob")
        let outgoing = try alice.video.call(uid: "bob", localStream: syntheticStream())
        let heard = ConversationRecorder.attach(to: outgoing)
        let failed = try await heard.next()
        guard case .failed(.NoCodec(let kind, let reason)) = failed else {
            return XCTFail("heard \(failed), not a NoCodec failure")
        }
        XCTAssertEqual(kind, .video)
        XCTAssertTrue(reason.contains("no H.264 encoder"), reason)
        XCTAssertEqual(broken.attempts.value, 1)
        outgoing.close()
    }

    /// The mobile builds load OpenH264 at run time: a file that is not there is a typed
    /// error, and the codecs keep the OpenH264 they had.
    func testAnOpenH264LibraryThatCannotBeLoadedIsATypedError() throws {
        XCTAssertThrowsError(try useOpenh264Library(path: "/nonexistent/libopenh264.so")) { error in
            guard case VideoCodecError.Unavailable(let reason) = error else {
                return XCTFail("threw \(error), not Unavailable")
            }
            XCTAssertTrue(reason.contains("cannot be loaded"), reason)
        }
        XCTAssertNoThrow(try softwareVideoCodecs().decoder())
    }

    /// Real OpenH264 output through the AVCC conversion VideoToolbox needs, and back.
    func testAnnexBAndAvccRoundTripOnRealEncoderOutput() throws {
        let encoder = try softwareVideoCodecs().encoder(
            config: VideoEncoderConfig(width: 64, height: 48, fps: 30, maxBitrateBps: 300_000))
        var y = Data(count: 64 * 48), uv = Data(repeating: 128, count: 32 * 24)
        for i in 0..<y.count { y[i] = UInt8(i % 251) }
        let frame = try y.withUnsafeBytes { yb in
            try uv.withUnsafeBytes { ub in
                try VideoFrame.i420(
                    width: 64, height: 48, y: yb, yStride: 64, u: ub, uStride: 32, v: ub, vStride: 32,
                    timestampUs: 1)
            }
        }
        let output = AccessUnitOutput()
        try encoder.encode(frame: frame, keyframe: true, output: output)
        XCTAssertFalse(output.isEmpty())
        let annexB = output.finish().copyBytes()
        let types = annexB.withUnsafeBytes { H264Bitstream.nalUnits(annexB: $0).map(H264Bitstream.type(of:)) }
        XCTAssertEqual(Array(types.prefix(2)), [H264Bitstream.sps, H264Bitstream.pps], "\(types)")
        XCTAssertTrue(types.contains(H264Bitstream.idrSlice), "\(types)")

        let (sample, sps, pps) = annexB.withUnsafeBytes { H264Bitstream.avcc(annexB: $0) }
        let again = try sample.withUnsafeBytes {
            try H264Bitstream.annexB(avcc: $0, parameterSets: [try XCTUnwrap(sps), try XCTUnwrap(pps)])
        }
        let units = { (d: Data) in d.withUnsafeBytes { H264Bitstream.nalUnits(annexB: $0).map { Data($0) } } }
        XCTAssertEqual(units(again), units(annexB))

        // A cut-off sample is an error, not a crash.
        let cut = sample.prefix(sample.count - 1)
        XCTAssertThrowsError(try cut.withUnsafeBytes { try H264Bitstream.annexB(avcc: $0) })
    }
}
