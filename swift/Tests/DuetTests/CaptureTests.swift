// Media the app pushes from Swift, as the iOS camera and microphone shims do: NV12 frames
// as `Data` (borrowed for the call), 10 ms of 48 kHz mono PCM.

import Duet
import Foundation
import XCTest

final class CaptureTests: DuetTestCase {
    func testNv12FramesPushedFromSwiftArriveAtTheOtherSide() async throws {
        let alice = try await connect("alice")
        let bob = try await connect("bob")
        let width = 160, height = 120, luma: UInt8 = 200
        let camera = LocalStream(constraints: StreamConstraints(
            audio: true, video: VideoConstraints(width: UInt32(width), height: UInt32(height), fps: 15)))

        // A flat picture in a buffer with padded rows, as camera pixel buffers often have.
        let yStride = width + 32, uvStride = width + 32
        let y = Data(repeating: luma, count: yStride * height)
        let uv = Data(repeating: 128, count: uvStride * height / 2)
        let pushing = Task.detached {
            var frame: UInt64 = 0
            while !Task.isCancelled {
                let timestamp = frame * 66_666
                try camera.pushNv12(
                    width: UInt32(width), height: UInt32(height), y: y, yStride: UInt32(yStride),
                    uv: uv, uvStride: UInt32(uvStride), timestampUs: timestamp, rotation: .deg0)
                for part in 0..<6 {   // a frame's worth of audio: 6 x 10 ms
                    try camera.pushAudio(
                        samples: [Int16](repeating: 1000, count: 480),
                        timestampUs: timestamp + UInt64(part) * 10_000)
                }
                frame += 1
                try await Task.sleep(nanoseconds: 66_000_000)
            }
        }
        defer { pushing.cancel() }

        let outgoing = try alice.video.call(uid: "bob", localStream: camera)
        let callerHeard = ConversationRecorder.attach(to: outgoing)
        let (incoming, _) = try await bob.incoming.next()
        let calleeHeard = ConversationRecorder.attach(to: incoming)
        try incoming.accept(localStream: syntheticStream())
        let response = try await callerHeard.next()
        XCTAssertEqual(response, .response(.accepted))
        guard case .stream = try await calleeHeard.next() else { return XCTFail("no stream at bob") }

        let sink = FrameCollector(keep: 3)
        try XCTUnwrap(calleeHeard.lastStream).setVideoSink(sink: sink)
        let frames = try await sink.waitFor(3)
        for frame in frames {
            XCTAssertEqual(frame.width, width)
            XCTAssertEqual(frame.height, height)
            XCTAssertEqual(frame.bytes.count, width * height * 3 / 2)
            // The decoded picture is the flat one pushed, give or take the codec.
            let lumaMean = frame.bytes.prefix(width * height).reduce(0) { $0 + Int($1) } / (width * height)
            XCTAssertEqual(lumaMean, Int(luma), accuracy: 4)
        }
        try await eventually("audio decoded at bob") {
            (calleeHeard.lastStream?.audioFramesDecoded() ?? 0) > 0
        }
        XCTAssertEqual(try XCTUnwrap(calleeHeard.lastStream).pullAudio(samples: 480).count, 480)
        outgoing.close()
        let closed = try await calleeHeard.next()
        XCTAssertEqual(closed, .closed(.hangup))
    }
}
