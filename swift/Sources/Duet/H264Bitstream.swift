// H.264 bitstream plumbing between the engine's Annex B (start codes before each NAL unit)
// and VideoToolbox's AVCC (a 4-byte big-endian length before each NAL unit, the parameter
// sets kept apart in a format description). Platform-free, so the tests run it on Linux;
// the VideoToolbox codecs (iOS/VideoToolboxCodecs.swift) only call it.

import Foundation

public enum H264Bitstream {
    /// NAL unit types the codecs act on.
    public static let idrSlice: UInt8 = 5
    public static let sps: UInt8 = 7
    public static let pps: UInt8 = 8

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// The NAL units of an Annex-B stream (without their start codes), in order. Bytes
    /// before the first start code are ignored.
    public static func nalUnits(annexB bytes: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        var units: [UnsafeRawBufferPointer] = []
        var starts: [(codeStart: Int, unitStart: Int)] = []
        var zeros = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            if b == 1 && zeros >= 2 {
                // A 4-byte start code's extra zero belongs to the code, not the unit before.
                starts.append((i - min(zeros, 3), i + 1))
            }
            zeros = b == 0 ? zeros + 1 : 0
        }
        for (n, start) in starts.enumerated() {
            var end = n + 1 < starts.count ? starts[n + 1].codeStart : bytes.count
            // Trailing zeros before the next start code are not part of this unit.
            while end > start.unitStart && bytes[end - 1] == 0 && n + 1 < starts.count { end -= 1 }
            if end > start.unitStart {
                units.append(UnsafeRawBufferPointer(rebasing: bytes[start.unitStart..<end]))
            }
        }
        return units
    }

    /// The type (low five bits of the header) of a NAL unit.
    public static func type(of unit: UnsafeRawBufferPointer) -> UInt8 {
        unit.isEmpty ? 0 : unit[0] & 0x1f
    }

    /// AVCC (each NAL unit after a big-endian length of `lengthSize` bytes) to Annex B, as
    /// VideoToolbox's encoder output becomes what the engine sends. `parameterSets` (SPS,
    /// PPS from the format description) go first: pass them for keyframes.
    public static func annexB(
        avcc: UnsafeRawBufferPointer, lengthSize: Int = 4, parameterSets: [Data] = []
    ) throws -> Data {
        guard (1...4).contains(lengthSize) else {
            throw Malformed(description: "NAL length size \(lengthSize) is not 1 to 4")
        }
        let startCode: [UInt8] = [0, 0, 0, 1]
        var out = Data(capacity: avcc.count + 4 * (parameterSets.count + 4))
        for set in parameterSets {
            out.append(contentsOf: startCode)
            out.append(set)
        }
        var i = 0
        while i < avcc.count {
            guard i + lengthSize <= avcc.count else {
                throw Malformed(description: "a NAL length is cut off at byte \(i)")
            }
            var length = 0
            for k in 0..<lengthSize { length = length << 8 | Int(avcc[i + k]) }
            i += lengthSize
            guard length > 0, i + length <= avcc.count else {
                throw Malformed(description: "a NAL unit of \(length) bytes at byte \(i) overruns \(avcc.count)")
            }
            out.append(contentsOf: startCode)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: avcc[i..<(i + length)]))
            i += length
        }
        return out
    }

    /// Annex B to what VideoToolbox's decoder takes: the AVCC sample (4-byte lengths) of
    /// every NAL unit but the parameter sets, and the last SPS and PPS seen (`nil` when the
    /// access unit carries none; a decoder keeps the ones it has).
    public static func avcc(annexB bytes: UnsafeRawBufferPointer) -> (sample: Data, sps: Data?, pps: Data?) {
        var sample = Data(capacity: bytes.count + 16)
        var sps: Data?, pps: Data?
        for unit in nalUnits(annexB: bytes) {
            switch type(of: unit) {
            case Self.sps: sps = Data(unit)
            case Self.pps: pps = Data(unit)
            default:
                let n = UInt32(unit.count)
                sample.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)])
                sample.append(contentsOf: unit)
            }
        }
        return (sample, sps, pps)
    }
}
