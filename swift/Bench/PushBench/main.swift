// What a 1280x720 camera push from Swift costs through the real bindings, as a ratio to a
// memcpy of the same bytes, and the fixed cost of a push alone. Built and run by
// bench/ffi-push (swiftc -O, with Duet.swift and Frames.swift in the same module).
//
// Each repeat times one push and, right beside it, a memcpy of the frame's 1,382,400 bytes
// into an existing buffer. A ratio is the push's min (median, max) over the memcpy's min
// (median, max). The fixed cost is a push with video disabled (the engine returns before
// reading a pixel): everything but the pixels.

import Foundation

let width = 1280, height = 720
let chroma = (width / 2) * (height / 2)
let frameBytes = width * height + 2 * chroma

func noise(_ count: Int, _ seed: UInt32) -> Data {
    var x = seed &* 2_654_435_761 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5
        bytes[i] = UInt8(truncatingIfNeeded: x >> 24)
    }
    return Data(bytes)
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func timed(_ body: () throws -> Void) rethrows -> UInt64 {
    let start = now()
    try body()
    return now() - start
}

/// min, median, max in microseconds.
func spread(_ nanos: [UInt64]) -> [Double] {
    let s = nanos.sorted()
    return [s[0], s[s.count / 2], s[s.count - 1]].map { Double($0) / 1000 }
}

func f(_ v: Double, _ width: Int = 6, _ places: Int = 2) -> String {
    let s = String(format: "%.\(places)f", v)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

let repeats = CommandLine.arguments.dropFirst().first.flatMap { Int($0) }.map { max(1, $0) } ?? 300
let stream = LocalStream(constraints: StreamConstraints(
    audio: false,
    video: VideoConstraints(width: UInt32(width), height: UInt32(height), fps: 30, maxBitrateBps: 1_500_000)))
let y = noise(width * height, 1), u = noise(chroma, 2), v = noise(chroma, 3), uv = noise(2 * chroma, 4)
let src = UnsafeMutableRawPointer.allocate(byteCount: frameBytes, alignment: 64)
let dst = UnsafeMutableRawPointer.allocate(byteCount: frameBytes, alignment: 64)
memset(src, 7, frameBytes)
memset(dst, 0, frameBytes)
let w = UInt32(width), h = UInt32(height)
let pushes: [(String, () throws -> Void)] = [
    ("I420", { try stream.pushI420(width: w, height: h, y: y, yStride: w, u: u, uStride: w / 2,
                                   v: v, vStride: w / 2, timestampUs: 0, rotation: .deg0) }),
    ("NV12", { try stream.pushNv12(width: w, height: h, y: y, yStride: w, uv: uv, uvStride: w,
                                   timestampUs: 0, rotation: .deg90) }),
]
let copy = { memcpy(dst, src, frameBytes); return () }

for _ in 0..<50 { for (_, push) in pushes { try push() }; copy() }

print("Swift (Linux), \(width)x\(height), \(repeats) repeats, min / median / max")
print("                             push ÷ memcpy                  push µs                memcpy µs")
for (name, push) in pushes {
    var pushTimes = [UInt64](), copyTimes = [UInt64]()
    for _ in 0..<repeats {
        copyTimes.append(timed(copy))
        pushTimes.append(try timed(push))
    }
    let p = spread(pushTimes), c = spread(copyTimes)
    print("\(name) push".padding(toLength: 22, withPad: " ", startingAt: 0),
          f(p[0] / c[0]), f(p[1] / c[1]), f(p[2] / c[2]), "  ",
          f(p[0], 7, 1), f(p[1], 7, 1), f(p[2], 7, 1), "  ", f(c[0], 7, 1), f(c[1], 7, 1), f(c[2], 7, 1))
}

stream.setVideoEnabled(enabled: false)
let batch = 1000
for (name, push) in pushes {
    for _ in 0..<(5 * batch) { try push() }
    var samples = [UInt64]()
    for _ in 0..<repeats {
        samples.append(try timed { for _ in 0..<batch { try push() } } / UInt64(batch))
    }
    let s = spread(samples)
    print("\(name) fixed cost".padding(toLength: 22, withPad: " ", startingAt: 0),
          String(repeating: " ", count: 22), "  ", f(s[0], 7), f(s[1], 7), f(s[2], 7))
}
