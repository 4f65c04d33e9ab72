// The call: the other side full screen, you in a corner, the stats on top and the
// controls at the bottom.

import DuetExampleKit
import SwiftUI

struct InCallView: View {
    let model: CallModel
    let remoteUid: String

    var body: some View {
        ZStack {
            RemoteVideo(stream: model.remoteStream)
                .ignoresSafeArea()
            if model.remoteStream == nil {
                ProgressView("Connecting to \(remoteUid)…")
                    .tint(.white)
                    .foregroundStyle(.white)
            } else if !model.isRemoteVideoOn {
                // Not the last frame, frozen: the other side said its camera is off.
                Color.black.ignoresSafeArea()
                Label("\(remoteUid)'s camera is off", systemImage: "video.slash")
                    .foregroundStyle(.white)
            }
            VStack {
                HStack(alignment: .top) {
                    if let line = model.statsLine {
                        Text(line)
                            .font(.caption.monospacedDigit())
                            .padding(6)
                            .background(Color.black.opacity(0.5), in: RoundedRectangle(cornerRadius: 6))
                            .foregroundStyle(.white)
                    }
                    Spacer()
                    LocalPreview(model: model)
                        .frame(width: 108, height: 144)
                        .clipShape(RoundedRectangle(cornerRadius: 12))
                }
                .padding()
                Spacer()
                InCallControls(model: model)
                    .padding(.bottom, 32)
            }
        }
        .background(.black)
    }
}
