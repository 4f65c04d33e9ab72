// The other side's video: Duet's VideoView, its sink given to the RemoteStream.

import AVFoundation
import Duet
import SwiftUI

struct RemoteVideo: UIViewRepresentable {
    let stream: RemoteStream?

    func makeUIView(context: Context) -> VideoView {
        let view = VideoView()
        view.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ view: VideoView, context: Context) {
        let shown = context.coordinator
        guard shown.stream !== stream else { return }
        shown.stream?.setVideoSink(sink: nil)
        stream?.setVideoSink(sink: view.sink)
        shown.stream = stream
    }

    static func dismantleUIView(_ view: VideoView, coordinator: Coordinator) {
        coordinator.stream?.setVideoSink(sink: nil)
    }

    func makeCoordinator() -> Coordinator { Coordinator() }

    /// The stream whose frames this view shows now.
    final class Coordinator {
        var stream: RemoteStream?
    }
}
