// What the camera sees, straight from its capture session (no round trip through Duet).

import AVFoundation
import Duet
import SwiftUI

struct CameraPreview: UIViewRepresentable {
    let camera: CameraCapturer

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.videoGravity = .resizeAspectFill
        view.previewLayer.session = camera.session
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {
        if view.previewLayer.session !== camera.session {
            view.previewLayer.session = camera.session
        }
    }

    /// A view whose layer is the preview layer, so it follows the view's size.
    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }
}
