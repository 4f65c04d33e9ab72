// Your own picture: the camera's preview on a device; a placeholder when the camera is
// off, not allowed, or (in the simulator) replaced by the synthetic test pattern, which
// Duet does not show locally.

import DuetExampleKit
import SwiftUI

struct LocalPreview: View {
    let model: CallModel

    var body: some View {
        if let camera = (model.media as? DeviceMedia)?.camera, model.localStream != nil, !model.isCameraOff {
            CameraPreview(camera: camera)
        } else {
            ZStack {
                Color(white: 0.15)
                Image(systemName: model.canUseCamera && !model.isCameraOff ? "video.fill" : "video.slash.fill")
                    .font(.title)
                    .foregroundStyle(.gray)
            }
        }
    }
}
